package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// Messages the server sends for a pull request the subscription no longer
// counts on (it gave the request up, or a status ended the pulls) arrive
// late, with no slot waiting for them. They are neither lost nor run beyond
// the concurrency: they wait, kept alive, until a worker is free, and are
// then handled once, on their first delivery, and acknowledged.
func TestLateMessagesAreHandledOnceWhenAWorkerIsFree(t *testing.T) {
	_, js := runServer(t)
	ctx := context.Background()
	release := make(chan struct{})
	var (
		mu       sync.Mutex
		started  = map[string]time.Time{}
		returned = map[string]time.Time{}
		delivery = map[string][]uint64{}
	)
	h := func(_ context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
		id := ev.GetId()
		mu.Lock()
		started[id] = time.Now()
		delivery[id] = append(delivery[id], meta.Delivery)
		mu.Unlock()
		if id == "first" {
			<-release
		}
		mu.Lock()
		returned[id] = time.Now()
		mu.Unlock()
		return nil
	}
	r := eventbus.NewRouter(js, eventbus.WithService("svc"), eventbus.WithConcurrency(1))
	testpbv1.SubscribePing(r, h)
	startRouter(t, r)

	publish(t, js, "first")
	eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !started["first"].IsZero()
	})
	cons, err := js.Consumer(ctx, testpbv1.PingStream, "svc-eventbus_test_ping")
	if err != nil {
		t.Fatal(err)
	}
	// The only worker is busy; these fill the look-ahead, so that no slot
	// is free and the subscription sends no pull request.
	ahead := make([]string, eventbus.LookAhead(1))
	for i := range ahead {
		ahead[i] = fmt.Sprintf("ahead-%d", i)
	}
	publish(t, js, ahead...)
	eventually(t, 5*time.Second, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 1+len(ahead) && info.NumPending == 0
	})
	// These come only through the unreserved pull request.
	publish(t, js, "late-1", "late-2")
	if err := eventbus.PullUnreserved(r, testpbv1.PingSubject, 2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { // all are with the process
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 3+len(ahead) && info.NumPending == 0
	})
	close(release)

	eventually(t, 5*time.Second, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0
	})
	mu.Lock()
	defer mu.Unlock()
	for _, id := range append([]string{"first", "late-1", "late-2"}, ahead...) {
		if got := delivery[id]; len(got) != 1 || got[0] != 1 {
			t.Errorf("%s: deliveries handled %v, want [1]", id, got)
		}
	}
	for _, id := range []string{"late-1", "late-2"} {
		if started[id].Before(returned["first"]) {
			t.Errorf("%s ran while the only worker was busy", id)
		}
	}
}

// The runtime acknowledges through its own message type over the pull
// inbox's messages: a Term reaches the server with its reason, which the
// server's MSG_TERMINATED advisory carries.
func TestTermReachesTheServerWithItsReason(t *testing.T) {
	nc, js := runServer(t)
	advisories, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>")
	if err != nil {
		t.Fatal(err)
	}
	r := eventbus.NewRouter(js, eventbus.WithService("svc"), eventbus.WithoutDeadLetters())
	testpbv1.SubscribePing(r, func(context.Context, *testpbv1.Ping, eventbus.Meta) error {
		return eventbus.Permanent(errors.New("cannot apply this one"))
	})
	startRouter(t, r)

	publish(t, js, "doomed")
	m, err := advisories.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var adv struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(m.Data, &adv); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(adv.Reason, "cannot apply this one") {
		t.Errorf("terminated with reason %q", adv.Reason)
	}
}

// A consumer without a backlog keeps one pull request waiting at a time.
// When a trickle of messages fills that request, the server ends it with no
// status; the subscription must then ask again at once, not when the
// request would have expired. Before the fix, messages published at a
// steady, easy rate waited up to a second and more in the stream.
func TestSteadyTrickleIsHandledPromptly(t *testing.T) {
	_, js := runServer(t)
	ctx := context.Background()
	var (
		mu      sync.Mutex
		latency []time.Duration
	)
	r := eventbus.NewRouter(js, eventbus.WithoutDeadLetters())
	testpbv1.SubscribePing(r, func(_ context.Context, _ *testpbv1.Ping, meta eventbus.Meta) error {
		mu.Lock()
		latency = append(latency, time.Since(meta.Published))
		mu.Unlock()
		return nil
	}, eventbus.WithConcurrency(16))
	startRouter(t, r)

	const n = 100
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		if _, err := testpbv1.PublishPing(ctx, js, ping(fmt.Sprintf("trickle-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(latency) == n
	})
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latency)
	// The bound is generous for a loaded machine; the fault it guards
	// against delays messages by about a second.
	if p90 := latency[n*9/10]; p90 > 500*time.Millisecond {
		t.Fatalf("publish-to-handler latency p90 %v (p50 %v, max %v), want well under a second",
			p90, latency[n/2], latency[n-1])
	}
}

// The look-ahead brings messages beyond the free workers, to wait in the
// inbox. When the only worker is busy for longer than the ack wait, those
// messages must not expire there: the keeper moves them to the lot and
// keeps them alive, and each is then handled once, on its first delivery.
func TestLookAheadMessagesOutliveASlowHandler(t *testing.T) {
	_, js := runServer(t)
	ctx := context.Background()
	const ackWait = time.Second
	var (
		mu       sync.Mutex
		delivery = map[string][]uint64{}
	)
	firstStarted := make(chan struct{})
	h := func(hctx context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
		id := ev.GetId()
		mu.Lock()
		delivery[id] = append(delivery[id], meta.Delivery)
		mu.Unlock()
		if id == "slow" && meta.Delivery == 1 {
			close(firstStarted)
			<-hctx.Done() // one ack wait; the runtime keeps it alive
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	}
	r := eventbus.NewRouter(js, eventbus.WithService("svc"), eventbus.WithoutDeadLetters())
	testpbv1.SubscribePing(r, h, eventbus.WithConcurrency(1), eventbus.WithAckWait(ackWait))
	startRouter(t, r)

	publish(t, js, "slow")
	<-firstStarted
	behind := make([]string, 10)
	for i := range behind {
		behind[i] = fmt.Sprintf("behind-%d", i)
	}
	publish(t, js, behind...)
	cons, err := js.Consumer(ctx, testpbv1.PingStream, "svc-eventbus_test_ping")
	if err != nil {
		t.Fatal(err)
	}
	// All of them come to the process while the worker is busy.
	eventually(t, 5*time.Second, func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 11 && info.NumPending == 0
	})
	eventually(t, 10*time.Second, consumerSettled(t, js, "svc-eventbus_test_ping"))
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered, want 0", info.NumRedelivered)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range append([]string{"slow"}, behind...) {
		if got := delivery[id]; len(got) != 1 || got[0] != 1 {
			t.Errorf("%s: deliveries handled %v, want [1]", id, got)
		}
	}
}
