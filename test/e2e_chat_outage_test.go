package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/activitychat/chat/test/internal/chatc"
	"github.com/activitychat/chat/test/internal/harness"
	"github.com/activitychat/chat/test/internal/natsc"
)

// outage is how long scenario 4 keeps the chat service down.
const outage = 60 * time.Second

// TestChatOutage is scenario 4: the chat service is stopped for 60 s while
// events keep coming. An outage is not a poison message: with a retry
// budget far smaller than the outage, nothing may be dead-lettered, and
// after the service returns every event is applied.
func TestChatOutage(t *testing.T) {
	imgs := requireImages(t)
	ctx := harness.Deadline(t, 5*time.Minute)
	defer harness.Step(t, "scenario 4")()

	s := startStack(t, ctx, imgs, stackConfig{Consumer: func(c *chatc.ConsumerConfig) {
		c.Messaging.Retry = &chatc.Retry{
			MaxRetries:      3,
			InitialInterval: chatc.Duration(100 * time.Millisecond),
			MaxInterval:     chatc.Duration(time.Second),
			Multiplier:      2,
		}
	}})
	_, js := s.Connect(t, ctx)

	// 5 activities, 40 joins and 10 leaves each: 255 events.
	p := newPlan("outage", 5, 40, 10)
	leaver := func(a planActivity, u string) bool { return slices.Contains(a.Leavers, u) }

	// Before the outage: the groups, and the joins of those who will leave.
	applyPhase(t, ctx, s, p, phaseCreated, time.Minute)
	before := p.JoinedWhere(leaver)
	publishAll(t, ctx, js, before, 4, nil)

	// During it: the other joins and all the leaves, spread over the outage.
	during := append(p.JoinedWhere(func(a planActivity, u string) bool { return !leaver(a, u) }), p.Left()...)
	harness.Eventually(t, ctx, time.Minute, "joins before the outage applied", func(ctx context.Context) error {
		return consumersIdle(ctx, js)
	})

	stopped := time.Now()
	stopTimeout := 10 * time.Second
	if err := s.Chat.Stop(ctx, &stopTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("chat service stopped; publishing %d events over %s", len(during), outage)
	interval := (outage - 10*time.Second) / time.Duration(len(during))
	for _, ev := range during {
		if _, _, err := natsc.PublishRetry(ctx, js, ev.msg(), 2*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(interval)
	}
	time.Sleep(time.Until(stopped.Add(outage)))

	if n, err := dlqCount(ctx, js); err != nil || n != 0 {
		t.Fatalf("DLQ holds %d messages (%v) after %s of outage, want 0: an outage is not a poison message", n, err, outage)
	}
	restarted := time.Now()
	if err := s.Chat.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("chat service back after %s", restarted.Sub(stopped).Round(time.Second))

	c := expectEventually(t, ctx, s, p, phaseLeft, 2*time.Minute)
	t.Logf("all %d events applied %s after the chat service returned: %s",
		p.Total(), time.Since(restarted).Round(100*time.Millisecond), c)
	expectQuiet(t, ctx, js, p.Total())
}
