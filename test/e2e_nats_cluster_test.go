package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/test/internal/chatc"
	"github.com/activitychat/chat/test/internal/harness"
)

// TestNATSClusterLeaderKilled is scenario 6: NATS is a 3-node cluster, the
// consumer creates R3 streams, and the activity stream's leader is killed
// with SIGKILL under load. Publishers retry with Nats-Msg-Id, the consumer
// reconnects to the survivors, and nothing is lost or doubled: the stream
// holds each event once and the chat service shows each exactly once. The
// killed node then returns and catches up.
func TestNATSClusterLeaderKilled(t *testing.T) {
	imgs := requireImages(t)
	ctx := harness.Deadline(t, 5*time.Minute)
	defer harness.Step(t, "scenario 6")()

	// Deliveries whose acknowledgements died with the leader come back
	// after AckWait.
	s := startStack(t, ctx, imgs, stackConfig{ClusterNodes: 3, Consumer: func(c *chatc.ConsumerConfig) {
		c.Messaging.AckWait = chatc.Duration(5 * time.Second)
	}})
	_, js := s.Connect(t, ctx)

	// 20 activities × (1 created + 60 joins + 15 leaves) = 1,520 events.
	p := newPlan("ha", 20, 60, 15)
	applyPhase(t, ctx, s, p, phaseCreated, time.Minute)

	info := streamInfo(t, ctx, js)
	if info.Config.Replicas != 3 {
		t.Fatalf("stream %s has %d replicas, want 3", activityStream, info.Config.Replicas)
	}

	joins := p.Joined()
	var published atomic.Int64
	pubDone := make(chan error, 1)
	go func() {
		_, err := publishEvents(ctx, js, joins, 4, &published)
		pubDone <- err
	}()
	for published.Load() < int64(len(joins)/3) {
		select {
		case err := <-pubDone:
			t.Fatalf("publisher stopped before the kill: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	info = streamInfo(t, ctx, js)
	leader := s.Cluster.Node(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("stream leader %q is no node of the cluster", info.Cluster.Leader)
	}
	if err := harness.Kill(ctx, leader, "KILL"); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed stream leader %s after %d of %d joins published", leader.ServerName, published.Load(), len(joins))
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	expectEventually(t, ctx, s, p, phaseJoined, 2*time.Minute)

	done := harness.Step(t, "killed node back and current")
	if err := leader.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Cluster.WaitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	done()

	c := applyPhase(t, ctx, s, p, phaseLeft, 2*time.Minute)
	t.Logf("after the leader's death: %s", c)
	expectQuiet(t, ctx, js, p.Total())
}

// streamInfo returns the activity stream's info, retrying requests that no
// server answered.
func streamInfo(t *testing.T, ctx context.Context, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	harness.Eventually(t, ctx, time.Minute, "stream info", func(ctx context.Context) error {
		st, err := js.Stream(ctx, activityStream)
		if err != nil {
			return err
		}
		info, err = st.Info(ctx)
		return err
	})
	return info
}
