package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/test/internal/chatc"
	"github.com/activitychat/chat/test/internal/harness"
)

// Headers of a dead letter (contracts/eventbus/deadletters.go).
const (
	headerDLQSubject    = "Dlq-Subject"
	headerDLQReason     = "Dlq-Reason"
	headerDLQDeliveries = "Dlq-Deliveries"
	headerDLQSequence   = "Dlq-Sequence"
)

// dlqReplayArgs is the CLI command that replays the dead letter with DLQ
// stream sequence seq: `chatconsumer dlq replay SEQ`.
func dlqReplayArgs(seq uint64) []string {
	return []string{"dlq", "replay", strconv.FormatUint(seq, 10)}
}

// TestDeadLetters is scenario 3: poison messages are dead-lettered through
// JetStream's advisories, byte for byte with headers that say why; the CLI
// lists them and replays one. A join published before its activity is no
// poison: it applies when the activity's group is created.
func TestDeadLetters(t *testing.T) {
	imgs := requireImages(t)
	ctx := harness.Deadline(t, 4*time.Minute)
	defer harness.Step(t, "scenario 3")()

	s := startStack(t, ctx, imgs, stackConfig{Consumer: func(c *chatc.ConsumerConfig) {
		c.Messaging.Retry = &chatc.Retry{
			MaxRetries:      2,
			InitialInterval: chatc.Duration(100 * time.Millisecond),
			MaxInterval:     chatc.Duration(300 * time.Millisecond),
			Multiplier:      2,
			MaxHold:         chatc.Duration(2 * time.Second),
		}
	}})
	_, js := s.Connect(t, ctx)

	good := plan{Activities: []planActivity{{ID: "dlq_act_ok", Owner: "dlq_owner", Title: "Poison test"}}}
	applyPhase(t, ctx, s, good, phaseCreated, 30*time.Second)

	ghost := planActivity{ID: "dlq_act_later", Owner: "dlq_owner_later", Title: "Created late", Joiners: []string{"dlq_user_late"}}
	lateJoin := joinedEvent(ghost.ID, "dlq_user_late", baseTime.Add(time.Hour))

	poison := []struct {
		name   string
		msg    *nats.Msg
		reason string // a word the Dlq-Reason header should hold, lower case
	}{
		{"malformed JSON", rawMsg(subjectJoined, "dlq:malformed", `{"activity_id": "dlq_act_ok",`, ""), "decode"},
		{"invalid event", rawMsg(subjectJoined, "dlq:invalid", `{"activity_id": "dlq_act_ok","joined_at": "2024-01-01T11:00:00Z"}`, ""), "user_id"},
		{"unknown content type", rawMsg(subjectCreated, "dlq:content-type", seedCreated, "text/plain"), "content type"},
		{"owner leaves", leftEvent("dlq_act_ok", "dlq_owner", baseTime.Add(2*time.Hour)).msg(), "failed_precondition"},
	}
	ownerLeaves := poison[len(poison)-1].msg
	// A join before its activity exists is no poison: the chat service
	// keeps it until the group is created.
	if _, err := js.PublishMsg(ctx, lateJoin.msg()); err != nil {
		t.Fatalf("publish the early join: %v", err)
	}
	sent := map[string][]byte{}
	for _, p := range poison {
		if _, err := js.PublishMsg(ctx, p.msg); err != nil {
			t.Fatalf("publish %s: %v", p.name, err)
		}
		sent[p.msg.Header.Get(nats.MsgIdHdr)] = p.msg.Data
	}

	took := harness.Eventually(t, ctx, 90*time.Second, fmt.Sprintf("%d dead letters", len(poison)), func(ctx context.Context) error {
		n, err := dlqCount(ctx, js)
		if err != nil {
			return err
		}
		if n != uint64(len(poison)) {
			return fmt.Errorf("DLQ holds %d", n)
		}
		return nil
	})
	t.Logf("%d poison messages dead-lettered in %s", len(poison), took.Round(10*time.Millisecond))

	letters := readDLQ(t, ctx, js)
	replaySeq := uint64(0)
	for _, p := range poison {
		id := p.msg.Header.Get(nats.MsgIdHdr)
		dl, ok := letters[id]
		if !ok {
			t.Errorf("%s (%s): not in the DLQ", p.name, id)
			continue
		}
		if !bytes.Equal(dl.Data(), sent[id]) {
			t.Errorf("%s: dead letter %q, want the original bytes %q", p.name, dl.Data(), sent[id])
		}
		h := dl.Headers()
		if h.Get(headerDLQSubject) != p.msg.Subject || h.Get(headerDLQSequence) == "" {
			t.Errorf("%s: headers %v, want the original subject %s and sequence", p.name, h, p.msg.Subject)
		}
		if reason := strings.ToLower(h.Get(headerDLQReason)); !strings.Contains(reason, p.reason) {
			t.Errorf("%s: reason %q does not mention %q", p.name, h.Get(headerDLQReason), p.reason)
		}
		t.Logf("%s: dead letter after %s deliveries: %s", p.name, h.Get(headerDLQDeliveries), h.Get(headerDLQReason))
		if id == ownerLeaves.Header.Get(nats.MsgIdHdr) {
			meta, err := dl.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			replaySeq = meta.Sequence.Stream
		}
	}

	// The CLI lists the same dead letters, and finds the one to replay.
	var listed []struct {
		Seq     uint64 `json:"seq"`
		Subject string `json:"subject"`
		Reason  string `json:"reason"`
		Data    string `json:"data"`
	}
	list := s.CLI(t, ctx, "dlq", "list", "--json")
	if err := json.Unmarshal([]byte(list.Stdout), &listed); err != nil {
		t.Fatalf("dlq list --json: %v\n%s", err, list.Stdout)
	}
	if len(listed) != len(poison) {
		t.Errorf("dlq list shows %d dead letters, want %d", len(listed), len(poison))
	}
	for _, l := range listed {
		if l.Reason == "" {
			t.Errorf("dlq list: dead letter %d of %s has no reason", l.Seq, l.Subject)
		}
		if l.Subject == subjectLeft && l.Data == string(ownerLeaves.Data) && l.Seq != replaySeq {
			t.Errorf("dlq list: the owner's leave is dead letter %d, the DLQ stream says %d", l.Seq, replaySeq)
		}
	}

	// Nothing of the poison changed the good group.
	if _, err := expectPlan(ctx, s.ChatClient(t, ctx), good, phaseCreated); err != nil {
		t.Fatal(err)
	}

	// The late activity's group appears, and with it the early join,
	// without an operator.
	late := plan{Activities: []planActivity{ghost}}
	publishAll(t, ctx, js, late.Created(), 1, nil)
	c := expectEventually(t, ctx, s, late, phaseJoined, 30*time.Second)
	t.Logf("the join published before its activity applied: %s", c)

	// A replay publishes the owner's leave again: still refused, it comes
	// back as a new dead letter under the replay's message id.
	s.CLI(t, ctx, dlqReplayArgs(replaySeq)...)
	replayID := fmt.Sprintf("%s:replay:%d", ownerLeaves.Header.Get(nats.MsgIdHdr), replaySeq)
	harness.Eventually(t, ctx, 30*time.Second, "the replayed leave dead-lettered again", func(ctx context.Context) error {
		if _, ok := readDLQ(t, ctx, js)[replayID]; !ok {
			return fmt.Errorf("no dead letter %s", replayID)
		}
		n, err := dlqCount(ctx, js)
		if err != nil {
			return err
		}
		if n != uint64(len(poison)) {
			return fmt.Errorf("DLQ holds %d, want %d", n, len(poison))
		}
		return nil
	})
}

// rawMsg is a message with any payload, and a Content-Type unless empty.
func rawMsg(subject, msgID, data, contentType string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(nats.MsgIdHdr, msgID)
	if contentType != "" {
		m.Header.Set("Content-Type", contentType)
	}
	m.Data = []byte(data)
	return m
}

// readDLQ returns the dead letters by their original Nats-Msg-Id.
func readDLQ(t *testing.T, ctx context.Context, js jetstream.JetStream) map[string]jetstream.Msg {
	t.Helper()
	st, err := js.Stream(ctx, dlqStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]jetstream.Msg{}
	batch, err := cons.Fetch(int(info.State.Msgs), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		id := m.Headers().Get("Dlq-Original-Id")
		if id == "" {
			id = m.Headers().Get(nats.MsgIdHdr)
		}
		out[id] = m
	}
	if err := batch.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}
