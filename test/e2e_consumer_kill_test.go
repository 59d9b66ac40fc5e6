package e2e

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/test/internal/chatc"
	"github.com/activitychat/chat/test/internal/harness"
)

// TestConsumerKilled is scenario 5: the consumer is killed with SIGKILL in
// the middle of 5,000 events and started again. Whatever it had handled but
// not acknowledged is delivered again, and the idempotent writes make every
// event count exactly once: exact members, exactly one notice per event.
func TestConsumerKilled(t *testing.T) {
	imgs := requireImages(t)
	ctx := harness.Deadline(t, 5*time.Minute)
	defer harness.Step(t, "scenario 5")()

	// Events handed to the killed process come back after AckWait.
	s := startStack(t, ctx, imgs, stackConfig{Consumer: func(c *chatc.ConsumerConfig) {
		c.Messaging.AckWait = chatc.Duration(5 * time.Second)
	}})
	_, js := s.Connect(t, ctx)

	// 50 activities × (1 created + 80 joins + 19 leaves) = 5,000 events.
	p := newPlan("kill", 50, 80, 19)
	if p.Total() != 5000 {
		t.Fatalf("plan of %d events", p.Total())
	}
	applyPhase(t, ctx, s, p, phaseCreated, time.Minute)

	// The joins go in while the consumer dies and returns.
	joins := p.Joined()
	var published atomic.Int64
	pubDone := make(chan error, 1)
	go func() {
		_, err := publishEvents(ctx, js, joins, 4, &published)
		pubDone <- err
	}()

	harness.Eventually(t, ctx, time.Minute, "a quarter of the joins handled", func(ctx context.Context) error {
		n, err := handled(ctx, js)
		if err != nil {
			return err
		}
		if n < uint64(len(joins)/4) {
			return fmt.Errorf("%d handled", n)
		}
		return nil
	})
	consumer := s.Consumers[0]
	n, _ := handled(ctx, js)
	if err := harness.Kill(ctx, consumer, "KILL"); err != nil {
		t.Fatal(err)
	}
	t.Logf("consumer killed with SIGKILL after about %d acknowledged events, %d of %d joins published",
		n, published.Load(), len(joins))
	// The consumer stays down while joins keep coming: wait for a batch of
	// them (or all) to be published with nobody consuming.
	down := published.Load()
	harness.Eventually(t, ctx, time.Minute, "joins published while the consumer is down", func(context.Context) error {
		if p := published.Load(); p < min(down+int64(len(joins))/10, int64(len(joins))) {
			return fmt.Errorf("%d of %d joins published", p, len(joins))
		}
		return nil
	})
	restart := harness.Step(t, "consumer restart")
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restart()

	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	expectEventually(t, ctx, s, p, phaseJoined, 2*time.Minute)
	c := applyPhase(t, ctx, s, p, phaseLeft, 2*time.Minute)
	t.Logf("after the kill: %s", c)
	expectQuiet(t, ctx, js, p.Total())
}

// handled returns how many events the durable consumers of the activity
// stream have had acknowledged, by their ack floors.
func handled(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(ctx, activityStream)
	if err != nil {
		return 0, err
	}
	lister := st.ListConsumers(ctx)
	var n uint64
	for info := range lister.Info() {
		n += info.AckFloor.Consumer
	}
	return n, lister.Err()
}
