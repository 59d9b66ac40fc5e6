package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/test/internal/harness"
)

// TestSeedFlows is scenario 1: the seed's three flows, each published as the
// seed's JSON by a plain NATS client (no generated code, no Content-Type
// header), each checked over the chat service's API before the next.
func TestSeedFlows(t *testing.T) {
	imgs := requireImages(t)
	ctx := harness.Deadline(t, 3*time.Minute)
	defer harness.Step(t, "scenario 1")()

	s := startStack(t, ctx, imgs, stackConfig{})
	seedFlows(t, ctx, s, "seed")
}

// seedFlows publishes the seed's three events one by one and checks the
// group after each. Scenario 2 runs it on PostgreSQL.
func seedFlows(t *testing.T, ctx context.Context, s *stack, msgIDPrefix string) {
	t.Helper()
	_, js := s.Connect(t, ctx)
	p := plan{Activities: []planActivity{{
		ID: "act_123456", Owner: "user_789", Title: "周末爬山活动",
		Joiners: []string{"user_456"}, Leavers: []string{"user_456"},
	}}}

	flows := []struct {
		name    string
		subject string
		payload string
		phase   phase
		members int
		notices int
	}{
		{"created", subjectCreated, seedCreated, phaseCreated, 1, 1},
		{"joined", subjectJoined, seedJoined, phaseJoined, 2, 2},
		{"left", subjectLeft, seedLeft, phaseLeft, 1, 3},
	}
	for _, f := range flows {
		if !t.Run(f.name, func(t *testing.T) {
			if _, err := js.Publish(ctx, f.subject, []byte(f.payload), jetstream.WithMsgID(msgIDPrefix+":"+f.name)); err != nil {
				t.Fatal(err)
			}
			c := expectEventually(t, ctx, s, p, f.phase, 30*time.Second)
			if c.Members != f.members || c.Notices != f.notices {
				t.Fatalf("after %s: %s, want %d members and %d notices", f.name, c, f.members, f.notices)
			}
		}) {
			t.FailNow()
		}
	}
	expectQuiet(t, ctx, js, len(flows))
}
