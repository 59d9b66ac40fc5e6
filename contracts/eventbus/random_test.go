package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// A randomized run of one subscription: thousands of messages whose handlers
// succeed, come too early (NotReady, then succeed), are slow, fail a few
// times and then succeed, fail for good (Permanent), or fail on every call;
// the dependency goes down for whole periods (Unavailable), and the router
// is restarted several times. At the end every message was handled
// successfully exactly once or dead-lettered exactly once, only the ones
// that fail for good are dead letters, a message that fails on every call
// was called exactly MaxRetries+1 times, and nothing is left pending.
//
// EVENTBUS_SEED replays a run; the seed is logged.
func TestRandomizedDeliveryPromises(t *testing.T) {
	if testing.Short() {
		t.Skip("long randomized test")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("EVENTBUS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("EVENTBUS_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x8))

	const (
		n          = 3000
		maxRetries = 2
	)
	type plan struct {
		kind  string
		k     int           // notready, transient: how many calls fail first
		sleep time.Duration // slow
	}
	plans := make(map[string]plan, n)
	ids := make([]string, n)
	for i := range n {
		id := fmt.Sprintf("r%d", i)
		ids[i] = id
		var p plan
		switch x := rng.IntN(100); {
		case x < 55:
			p.kind = "ok"
		case x < 67:
			p = plan{kind: "notready", k: 1 + rng.IntN(4)}
		case x < 75:
			p = plan{kind: "slow", sleep: time.Duration(20+rng.IntN(200)) * time.Millisecond}
		case x < 88:
			p = plan{kind: "transient", k: 1 + rng.IntN(maxRetries)}
		case x < 94:
			p.kind = "permanent"
		default:
			p.kind = "exhaust"
		}
		plans[id] = p
	}
	failsForGood := func(p plan) bool { return p.kind == "permanent" || p.kind == "exhaust" }

	_, js := runServer(t)
	var down atomic.Bool
	var mu sync.Mutex
	called := map[string]int{} // calls that did not meet an outage
	succeeded := map[string]int{}
	h := func(_ context.Context, ev *testpbv1.Ping, _ eventbus.Meta) error {
		id := ev.GetId()
		if down.Load() {
			return eventbus.Unavailable(errors.New("chat is down"))
		}
		p := plans[id]
		mu.Lock()
		called[id]++
		c := called[id]
		mu.Unlock()
		var err error
		switch p.kind {
		case "notready":
			if c <= p.k {
				err = eventbus.NotReady(errors.New("group not created yet"))
			}
		case "slow":
			time.Sleep(p.sleep)
		case "transient":
			if c <= p.k {
				err = errors.New("transient failure")
			}
		case "permanent":
			err = eventbus.Permanent(errors.New("refused for good"))
		case "exhaust":
			err = errors.New("fails every time")
		}
		if err == nil {
			mu.Lock()
			succeeded[id]++
			mu.Unlock()
		}
		return err
	}
	newRouter := func() *eventbus.Router {
		r := eventbus.NewRouter(js, eventbus.WithService("rand"),
			eventbus.WithConcurrency(16),
			eventbus.WithAckWait(2*time.Second),
			eventbus.WithProbeInterval(20*time.Millisecond),
			eventbus.WithDrainTimeout(5*time.Second),
			eventbus.WithRetry(eventbus.Retry{MaxRetries: maxRetries, InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, Multiplier: 2, MaxHold: 5 * time.Second}))
		testpbv1.SubscribePing(r, h)
		return r
	}

	stop := startRouter(t, newRouter())
	published := make(chan error, 1)
	go func() {
		for _, id := range ids {
			if _, err := testpbv1.PublishPing(context.Background(), js, ping(id)); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	// Chaos while the messages flow: outages and restarts.
	for range 6 {
		time.Sleep(time.Duration(200+rng.IntN(500)) * time.Millisecond)
		if rng.IntN(2) == 0 {
			down.Store(true)
			time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
			if rng.IntN(2) == 0 {
				stop() // a restart during the outage
				stop = startRouter(t, newRouter())
			}
			down.Store(false)
		}
		stop()
		stop = startRouter(t, newRouter())
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}

	wantDead := 0
	for _, p := range plans {
		if failsForGood(p) {
			wantDead++
		}
	}
	eventually(t, 45*time.Second, func() bool {
		mu.Lock()
		done := 0
		for id, p := range plans {
			if !failsForGood(p) && succeeded[id] > 0 {
				done++
			}
		}
		mu.Unlock()
		return done == n-wantDead && dlqCount(t, js, "rand") >= uint64(wantDead)
	})
	eventually(t, 10*time.Second, consumerSettled(t, js, "rand-eventbus_test_ping"))
	stop()

	dead := map[string]int{}
	for _, dl := range serviceDeadLetters(t, js, "rand", wantDead) {
		var ev testpbv1.Ping
		if err := eventbus.Decode(dl.Header.Get(eventbus.HeaderContentType), dl.Data, &ev); err != nil {
			t.Fatalf("dead letter %d: %v", dl.Seq, err)
		}
		id := ev.GetId()
		dead[id]++
		switch p := plans[id]; p.kind {
		case "permanent":
			if !strings.Contains(dl.Reason, "refused for good") {
				t.Errorf("%s: reason %q", id, dl.Reason)
			}
		case "exhaust":
			if !strings.Contains(dl.Reason, fmt.Sprintf("retries exhausted after %d handler failures", maxRetries+1)) {
				t.Errorf("%s: reason %q", id, dl.Reason)
			}
		default:
			t.Errorf("%s (%s) dead-lettered: %q", id, p.kind, dl.Reason)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	counts := map[string]int{}
	for _, id := range ids {
		p := plans[id]
		counts[p.kind]++
		if failsForGood(p) {
			if dead[id] != 1 || succeeded[id] != 0 {
				t.Errorf("%s (%s): dead-lettered %d times, succeeded %d times; want 1 and 0", id, p.kind, dead[id], succeeded[id])
			}
			if p.kind == "exhaust" && called[id] != maxRetries+1 {
				t.Errorf("%s: handler failed %d times, want MaxRetries+1 = %d", id, called[id], maxRetries+1)
			}
			continue
		}
		if succeeded[id] != 1 || dead[id] != 0 {
			t.Errorf("%s (%s): succeeded %d times, dead-lettered %d times; want 1 and 0", id, p.kind, succeeded[id], dead[id])
		}
	}
	t.Logf("messages by kind: %v", counts)
}
