package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// The tests in this file prove the promises of the package documentation,
// one issue point each, on a real embedded nats-server. They use only API
// that predates the promises, so that they also run against the old code.

// calls counts handler calls and their results per event id.
type calls struct {
	mu        sync.Mutex
	total     map[string]int
	succeeded map[string]int
	failed    map[string]int
	first     map[string]time.Time
	last      map[string]time.Time
	deliv     map[string][]uint64
}

func newCalls() *calls {
	return &calls{
		total: map[string]int{}, succeeded: map[string]int{}, failed: map[string]int{},
		first: map[string]time.Time{}, last: map[string]time.Time{}, deliv: map[string][]uint64{},
	}
}

func (c *calls) record(id string, meta eventbus.Meta, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.total[id] == 0 {
		c.first[id] = now
	}
	c.last[id] = now
	c.total[id]++
	c.deliv[id] = append(c.deliv[id], meta.Delivery)
	if err == nil {
		c.succeeded[id]++
	} else {
		c.failed[id]++
	}
}

func (c *calls) get(f func(*calls) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f(c)
}

// dlqCount returns how many dead letters service has in the ping stream's DLQ.
func dlqCount(t testing.TB, js jetstream.JetStream, service string) uint64 {
	t.Helper()
	dlq, err := eventbus.OpenDeadLetters(context.Background(), js, testpbv1.PingStream, service)
	if err != nil {
		t.Fatal(err)
	}
	n, err := dlq.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func consumerSettled(t testing.TB, js jetstream.JetStream, durable string) func() bool {
	return func() bool {
		c, err := js.Consumer(context.Background(), testpbv1.PingStream, durable)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	}
}

func publish(t testing.TB, js jetstream.JetStream, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := testpbv1.PublishPing(context.Background(), js, ping(id)); err != nil {
			t.Fatal(err)
		}
	}
}

// Issue 8, point 1: messages behind NotReady ones are neither starved nor
// dead-lettered. Two workers, two early joins that stay NotReady for three
// ack waits, five valid joins behind them: the valid ones are handled once
// each while the early ones wait, nothing is redelivered or dead-lettered.
func TestNotReadyDoesNotStarveMessagesBehindIt(t *testing.T) {
	_, js := runServer(t)
	const ackWait = 500 * time.Millisecond
	var ready atomic.Bool
	c := newCalls()
	h := func(_ context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
		var err error
		if strings.HasPrefix(ev.GetId(), "early") && !ready.Load() {
			err = eventbus.NotReady(errors.New("group not created yet"))
		}
		c.record(ev.GetId(), meta, err)
		return err
	}
	r := eventbus.NewRouter(js, eventbus.WithService("svc"),
		eventbus.WithConcurrency(2),
		eventbus.WithAckWait(ackWait),
		eventbus.WithRetry(eventbus.Retry{MaxRetries: 1, InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, Multiplier: 2, MaxHold: time.Minute}))
	testpbv1.SubscribePing(r, h)
	startRouter(t, r)

	publish(t, js, "early-1", "early-2")
	eventually(t, 5*time.Second, func() bool {
		return c.get(func(c *calls) bool { return c.total["early-1"] > 0 && c.total["early-2"] > 0 })
	})
	valid := []string{"valid-1", "valid-2", "valid-3", "valid-4", "valid-5"}
	publish(t, js, valid...)
	eventually(t, 5*time.Second, func() bool {
		return c.get(func(c *calls) bool {
			for _, id := range valid {
				if c.succeeded[id] == 0 {
					return false
				}
			}
			return true
		})
	})
	// Let the early ones wait for three ack waits.
	eventually(t, 10*time.Second, func() bool {
		return c.get(func(c *calls) bool { return c.last["early-2"].Sub(c.first["early-2"]) > 3*ackWait })
	})
	ready.Store(true)
	eventually(t, 5*time.Second, func() bool {
		return c.get(func(c *calls) bool { return c.succeeded["early-1"] == 1 && c.succeeded["early-2"] == 1 })
	})
	eventually(t, 5*time.Second, consumerSettled(t, js, "svc-eventbus_test_ping"))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range valid {
		if c.total[id] != 1 {
			t.Errorf("%s handled %d times (deliveries %v), want once", id, c.total[id], c.deliv[id])
		}
	}
	for id, ds := range c.deliv {
		for _, d := range ds {
			if d != 1 {
				t.Errorf("%s was redelivered (deliveries %v)", id, ds)
				break
			}
		}
	}
	if n := dlqCount(t, js, "svc"); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// Issue 8, point 2: while a subscription holds for an unavailable
// dependency, a probe that meets NotReady does not stop the keepalives of
// the held messages. A second puller on the durable consumer (another
// replica) would receive any held message whose ack wait ran out.
func TestProbeMeetingNotReadyKeepsHeldMessagesAlive(t *testing.T) {
	_, js := runServer(t)
	const ackWait = 500 * time.Millisecond
	var phase atomic.Int32 // 0 down, 1 the probe meets NotReady and the rest is still down, 2 up
	var notReady atomic.Value
	notReady.Store("")
	c := newCalls()
	h := func(_ context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
		var err error
		switch phase.Load() {
		case 0:
			err = eventbus.Unavailable(errors.New("connection refused"))
		case 1:
			if notReady.CompareAndSwap("", ev.GetId()) || notReady.Load() == ev.GetId() {
				err = eventbus.NotReady(errors.New("group not created yet"))
			} else {
				err = eventbus.Unavailable(errors.New("connection refused"))
			}
		}
		c.record(ev.GetId(), meta, err)
		return err
	}
	reg := prometheus.NewRegistry()
	r := eventbus.NewRouter(js, eventbus.WithService("svc"), eventbus.WithMetrics(reg),
		eventbus.WithAckWait(ackWait),
		eventbus.WithProbeInterval(20*time.Millisecond),
		eventbus.WithRetry(eventbus.Retry{MaxRetries: 1, InitialInterval: 20 * time.Millisecond, MaxInterval: 50 * time.Millisecond, Multiplier: 2, MaxHold: time.Minute}))
	testpbv1.SubscribePing(r, h)
	if err := r.Provision(context.Background()); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	publish(t, js, ids...) // before the router runs: it receives all of them
	startRouter(t, r)
	eventually(t, 5*time.Second, func() bool {
		return r.Ready() != nil && metricValue(t, reg, "messaging_held", testpbv1.PingSubject) == float64(len(ids))
	})
	phase.Store(1)
	eventually(t, 5*time.Second, func() bool { return notReady.Load() != "" })
	// Pull as another replica would for three ack waits: an expired held
	// message would come here.
	cons, err := js.Consumer(context.Background(), testpbv1.PingStream, "svc-eventbus_test_ping")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(len(ids), jetstream.FetchMaxWait(3*ackWait))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		md, _ := m.Metadata()
		t.Errorf("held message %q expired while the probe met NotReady (delivery %d)", m.Data(), md.NumDelivered)
	}
	phase.Store(2)
	eventually(t, 10*time.Second, func() bool {
		return c.get(func(c *calls) bool {
			for _, id := range ids {
				if c.succeeded[id] == 0 {
					return false
				}
			}
			return true
		})
	})
	eventually(t, 5*time.Second, consumerSettled(t, js, "svc-eventbus_test_ping"))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.succeeded[id] != 1 {
			t.Errorf("%s succeeded %d times, want once", id, c.succeeded[id])
		}
		for _, d := range c.deliv[id] {
			if d != 1 {
				t.Errorf("%s was redelivered while held (deliveries %v)", id, c.deliv[id])
				break
			}
		}
	}
	if n := dlqCount(t, js, "svc"); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

// Issue 8, point 3: restarts during an outage spend no retry budget. With
// MaxRetries 1, four restarts while the dependency is down, then it comes
// back: nothing is dead-lettered and every message is handled.
func TestRestartsDuringOutageDoNotDeadLetter(t *testing.T) {
	_, js := runServer(t)
	var down atomic.Bool
	down.Store(true)
	c := newCalls()
	h := func(_ context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
		var err error
		if down.Load() {
			err = eventbus.Unavailable(errors.New("connection refused"))
		}
		c.record(ev.GetId(), meta, err)
		return err
	}
	var reg *prometheus.Registry
	newRouter := func() *eventbus.Router {
		reg = prometheus.NewRegistry()
		r := eventbus.NewRouter(js, eventbus.WithService("svc"), eventbus.WithMetrics(reg),
			eventbus.WithAckWait(time.Second),
			eventbus.WithProbeInterval(50*time.Millisecond),
			eventbus.WithRetry(eventbus.Retry{MaxRetries: 1, InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, Multiplier: 2, MaxHold: time.Second}))
		testpbv1.SubscribePing(r, h)
		return r
	}
	ids := []string{"a", "b", "c", "d", "e"}
	for round := range 5 {
		r := newRouter()
		if round == 0 {
			if err := r.Provision(context.Background()); err != nil {
				t.Fatal(err)
			}
			publish(t, js, ids...)
		}
		stop := startRouter(t, r)
		// The router holds.
		eventually(t, 10*time.Second, func() bool {
			return r.Ready() != nil && metricValue(t, reg, "messaging_held", testpbv1.PingSubject) >= 1
		})
		if round == 4 {
			down.Store(false)
			eventually(t, 10*time.Second, func() bool {
				return c.get(func(c *calls) bool {
					for _, id := range ids {
						if c.succeeded[id] == 0 {
							return false
						}
					}
					return true
				})
			})
		}
		stop()
	}
	eventually(t, 5*time.Second, consumerSettled(t, js, "svc-eventbus_test_ping"))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.succeeded[id] != 1 {
			t.Errorf("%s succeeded %d times (deliveries %v), want once", id, c.succeeded[id], c.deliv[id])
		}
	}
	if n := dlqCount(t, js, "svc"); n != 0 {
		t.Errorf("%d dead letters after restarts during an outage, want 0", n)
	}
}

// Issue 8, point 4: a handler that outlives its ack wait cannot put an
// applied message into the DLQ. The first call hangs, ignoring its context,
// until the redelivery has succeeded, then fails for good: that result
// comes too late and is dropped.
func TestSlowHandlerPastAckWaitDoesNotDeadLetterAppliedMessage(t *testing.T) {
	_, js := runServer(t)
	applied := make(chan struct{})
	var once sync.Once
	c := newCalls()
	h := func(_ context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
		var err error
		if meta.Delivery == 1 {
			<-applied
			time.Sleep(100 * time.Millisecond) // the redelivery's ack reaches the server
			err = eventbus.Permanent(errors.New("stale failure"))
		} else {
			once.Do(func() { close(applied) })
		}
		c.record(ev.GetId(), meta, err)
		return err
	}
	reg := prometheus.NewRegistry()
	r := eventbus.NewRouter(js, eventbus.WithService("svc"), eventbus.WithMetrics(reg),
		eventbus.WithAckWait(500*time.Millisecond))
	testpbv1.SubscribePing(r, h)
	startRouter(t, r)
	publish(t, js, "slow")

	eventually(t, 10*time.Second, func() bool {
		return c.get(func(c *calls) bool { return c.succeeded["slow"] == 1 && c.failed["slow"] == 1 })
	})
	// The late failure is settled: dropped as stale, or (before the fix)
	// terminated and dead-lettered.
	handled := func(outcome string) float64 {
		return metricValue(t, reg, "messaging_handler_total", testpbv1.PingSubject, outcome)
	}
	eventually(t, 10*time.Second, func() bool {
		return handled("stale") == 1 || dlqCount(t, js, "svc") > 0 || handled("dead_letter") > 0
	})
	eventually(t, 5*time.Second, consumerSettled(t, js, "svc-eventbus_test_ping"))
	if n := dlqCount(t, js, "svc"); n != 0 {
		t.Fatalf("an applied message was dead-lettered (%d dead letters)", n)
	}
	if handled("stale") != 1 {
		t.Fatalf("stale outcome = %v, want 1", handled("stale"))
	}
}

// metricValue returns the value of the counter or gauge name with the
// given label values (subject, then outcome if any), or 0.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "subject":
					if lp.GetValue() != labels[0] {
						continue metrics
					}
				case "outcome":
					if len(labels) < 2 || lp.GetValue() != labels[1] {
						continue metrics
					}
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// Issue 8, point 3 (backstop): a message whose handler never finishes,
// because the process stops (here: the router is stopped while the
// handler hangs, which a crash does too) on every delivery, ends in the
// DLQ through the delivery backstop, without its handler failing, with a
// reason that says so.
func TestCrashLoopEndsInDeadLetterQueue(t *testing.T) {
	_, js := runServer(t)
	release := make(chan struct{})
	defer close(release)
	var delivered atomic.Uint64
	var maxDeliver atomic.Int64
	h := func(_ context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
		maxDeliver.Store(int64(meta.MaxDeliver))
		delivered.Store(meta.Delivery)
		<-release // the crash: nothing comes back
		return nil
	}
	opts := []eventbus.RouterOption{eventbus.WithService("svc"),
		eventbus.WithAckWait(200 * time.Millisecond),
		eventbus.WithDrainTimeout(10 * time.Millisecond),
		eventbus.WithRetry(eventbus.Retry{MaxRetries: 0, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, Multiplier: 1, MaxHold: time.Second})}
	var dls []eventbus.DeadLetter
	for restarts := 0; ; restarts++ {
		if restarts > 30 {
			t.Fatalf("no dead letter after %d restarts", restarts)
		}
		r := eventbus.NewRouter(js, opts...)
		testpbv1.SubscribePing(r, h)
		stop := startRouter(t, r)
		if restarts == 0 {
			publish(t, js, "poison")
		}
		before := delivered.Load()
		deadline := time.Now().Add(5 * time.Second)
		for delivered.Load() == before && dlqCount(t, js, "svc") == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		stop()
		if dlqCount(t, js, "svc") > 0 {
			dls = serviceDeadLetters(t, js, "svc", 1)
			break
		}
	}
	dl := dls[0]
	if !strings.Contains(dl.Reason, "crash loop") {
		t.Errorf("reason %q does not say crash loop", dl.Reason)
	}
	if want := maxDeliver.Load(); int64(dl.Deliveries) != want {
		t.Errorf("dead-lettered after %d deliveries, want MaxDeliver = %d", dl.Deliveries, want)
	}
	if got := delivered.Load(); int64(got) != maxDeliver.Load()-1 {
		t.Errorf("handler saw %d deliveries, want MaxDeliver-1 = %d: the last goes to the DLQ unhandled", got, maxDeliver.Load()-1)
	}
}
