package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// An outage holds the messages instead of spending their deliveries.
// MaxDeliver is 2 here, so a spent delivery would dead-letter.
func TestUnavailableHoldsWithoutSpendingDeliveries(t *testing.T) {
	_, js := runServer(t)
	var down atomic.Bool
	down.Store(true)
	rec := &recorder{fail: func(*testpbv1.Ping, eventbus.Meta) error {
		if down.Load() {
			return eventbus.Unavailable(errors.New("connection refused"))
		}
		return nil
	}}
	r := eventbus.NewRouter(js,
		eventbus.WithRetry(eventbus.Retry{MaxRetries: 1, InitialInterval: 50 * time.Millisecond, MaxInterval: 200 * time.Millisecond, Multiplier: 2, MaxHold: time.Second}),
		eventbus.WithAckWait(time.Second), // held longer than this: in-progress acks keep them
		eventbus.WithProbeInterval(50*time.Millisecond))
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	const n = 20
	for i := range n {
		if _, err := testpbv1.PublishPing(context.Background(), js, ping(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, func() bool { return r.Ready() != nil })
	time.Sleep(2500 * time.Millisecond) // well past AckWait and the retry budget
	if err := r.Ready(); err == nil {
		t.Fatal("Ready() = nil during the outage")
	}
	down.Store(false)
	eventually(t, 5*time.Second, func() bool { return r.Ready() == nil })

	seen := map[uint64]bool{}
	eventually(t, 5*time.Second, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, m := range rec.metas {
			seen[m.StreamSeq] = true
		}
		return len(seen) == n
	})
	time.Sleep(300 * time.Millisecond)
	rec.mu.Lock()
	// The outage lasts 2.5 ack waits: a consumer that did not hold would
	// have delivered every message 3 times and dead-lettered it. Held
	// messages keep their delivery; only messages the server had already
	// sent to the pull request drained when the gate closed come back once.
	for _, m := range rec.metas {
		if m.Delivery > 2 {
			t.Errorf("sequence %d reached delivery %d: the outage spent deliveries", m.StreamSeq, m.Delivery)
		}
	}
	rec.mu.Unlock()
	dlq, err := eventbus.OpenDeadLetters(context.Background(), js, testpbv1.PingStream, "eventbus")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := dlq.Count(context.Background()); c != 0 {
		t.Fatalf("%d dead letters after an outage, want 0", c)
	}
}

// A message that came too early is retried in place, on one delivery.
func TestNotReadyIsRetriedInPlace(t *testing.T) {
	_, js := runServer(t)
	var ready atomic.Bool
	var tries, successes atomic.Int32
	rec := &recorder{fail: func(*testpbv1.Ping, eventbus.Meta) error {
		if !ready.Load() {
			tries.Add(1)
			return eventbus.NotReady(errors.New("group not created yet"))
		}
		successes.Add(1)
		return nil
	}}
	r := eventbus.NewRouter(js,
		eventbus.WithRetry(eventbus.Retry{MaxRetries: 1, InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, Multiplier: 2, MaxHold: time.Minute}),
		eventbus.WithAckWait(500*time.Millisecond))
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	if _, err := testpbv1.PublishPing(context.Background(), js, ping("early")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // three ack waits
	ready.Store(true)
	eventually(t, 5*time.Second, func() bool { return successes.Load() == 1 })
	if n := tries.Load(); n < 5 {
		t.Errorf("tried %d times while not ready, want retries in place every 20-100ms", n)
	}
	time.Sleep(300 * time.Millisecond)
	if n := successes.Load(); n != 1 {
		t.Fatalf("handled %d times after becoming ready, want once", n)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, m := range rec.metas {
		if m.Delivery != 1 {
			t.Fatalf("delivery %d: a NotReady message must be retried in place", m.Delivery)
		}
	}
}

// Shutdown waits for the running handlers, which ack.
func TestShutdownDrainsInFlight(t *testing.T) {
	_, js := runServer(t)
	started := make(chan struct{}, 1)
	var finished atomic.Int32
	slow := func(ctx context.Context, _ *testpbv1.Ping, _ eventbus.Meta) error {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		finished.Add(1)
		return ctx.Err()
	}
	r := eventbus.NewRouter(js)
	testpbv1.SubscribePing(r, slow)
	stop := startRouter(t, r)
	if _, err := testpbv1.PublishPing(context.Background(), js, ping("slow")); err != nil {
		t.Fatal(err)
	}
	<-started
	stop()
	if finished.Load() != 1 {
		t.Fatal("Run returned before the in-flight handler finished")
	}
	// Acknowledged: a new router with the same durable sees nothing.
	rec := &recorder{}
	r2 := eventbus.NewRouter(js)
	testpbv1.SubscribePing(r2, rec.handle)
	startRouter(t, r2)
	time.Sleep(300 * time.Millisecond)
	if rec.count() != 0 {
		t.Fatalf("a drained message was delivered again")
	}
}
