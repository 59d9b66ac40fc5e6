package eventbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// A handler that hangs past the ack wait is redelivered until the delivery
// backstop (MaxDeliver), which dead-letters it without calling the handler.
func TestMaxDeliveriesAdvisoryIsDeadLettered(t *testing.T) {
	_, js := runServer(t)
	release := make(chan struct{})
	hung := func(context.Context, *testpbv1.Ping, eventbus.Meta) error { <-release; return nil }
	r := eventbus.NewRouter(js,
		eventbus.WithRetry(eventbus.Retry{MaxRetries: 1, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, Multiplier: 1, MaxHold: time.Second}),
		eventbus.WithAckWait(300*time.Millisecond),
		eventbus.WithMaxDeliver(3),
		eventbus.WithDrainTimeout(time.Second))
	testpbv1.SubscribePing(r, hung)
	startRouter(t, r)
	defer close(release)

	ack, err := testpbv1.PublishPing(context.Background(), js, ping("hung"))
	if err != nil {
		t.Fatal(err)
	}
	dl := deadLetters(t, js, 1)[0]
	if dl.StreamSeq != ack.Sequence || !strings.HasPrefix(dl.Reason, "crash loop or delivery backstop: delivered 3 times") || dl.Deliveries != 3 {
		t.Fatalf("dead letter = %+v", dl)
	}
}

// The dead letter is the original byte for byte, with the Dlq-* headers; a
// replay republishes it to its subject and removes it from the DLQ.
func TestDeadLetterIsByteIdenticalAndReplays(t *testing.T) {
	_, js := runServer(t)
	var fixed bool
	rec := &recorder{fail: func(ev *testpbv1.Ping, _ eventbus.Meta) error {
		if !fixed {
			return eventbus.Permanent(errors.New("rejected"))
		}
		return nil
	}}
	r := eventbus.NewRouter(js, eventbus.WithService("svc"))
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	ctx := context.Background()
	msg, err := eventbus.NewMsg(ctx, testpbv1.PingEvent, ping("orig"), eventbus.WithBinary(), eventbus.WithHeader("X-Tenant", "t1"))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	dl := waitDeadLetters(t, openDLQ(t, js, "svc"), 1, 15*time.Second)[0]
	if !bytes.Equal(dl.Data, msg.Data) {
		t.Fatal("dead letter payload differs from the original")
	}
	for k := range msg.Header {
		want := msg.Header.Get(k)
		if k == jetstream.MsgIDHeader {
			k = eventbus.HeaderDLQMsgID
		}
		if got := dl.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	wantHeaders := map[string]string{
		eventbus.HeaderDLQSubject:    testpbv1.PingSubject,
		eventbus.HeaderDLQStream:     testpbv1.PingStream,
		eventbus.HeaderDLQSequence:   strconv.FormatUint(ack.Sequence, 10),
		eventbus.HeaderDLQDeliveries: "1",
		eventbus.HeaderDLQConsumer:   "svc-eventbus_test_ping",
		eventbus.HeaderDLQReason:     "rejected",
	}
	for k, want := range wantHeaders {
		if got := dl.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if time.Since(dl.Time) > time.Minute {
		t.Errorf("Dlq-Time = %v", dl.Time)
	}

	fixed = true
	dlq := openDLQ(t, js, "svc")
	if _, err := dlq.Replay(ctx, dl.Seq); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return rec.count() == 2 })
	rec.mu.Lock()
	if m := rec.metas[1]; m.Subject != testpbv1.PingSubject || m.Header.Get(eventbus.HeaderReplayOf) == "" {
		t.Errorf("replay seen with subject %q and headers %v", m.Subject, m.Header)
	}
	rec.mu.Unlock()
	if n, _ := dlq.Count(ctx); n != 0 {
		t.Fatalf("%d dead letters after replay, want 0", n)
	}
	if _, err := dlq.Get(ctx, dl.Seq); !errors.Is(err, eventbus.ErrNotFound) {
		t.Fatalf("Get of a replayed dead letter: %v, want ErrNotFound", err)
	}
}

// Stopping and restarting the forwarder mid-way loses and doubles nothing,
// and an advisory seen twice makes one dead letter. The dead letters come
// from MAX_DELIVERIES advisories (a process died holding each message on
// its last delivery): the subscription never handles them, only the
// forwarder can store them.
func TestForwarderRestartLosesAndDoublesNothing(t *testing.T) {
	nc, js := runServer(t)
	ctx := context.Background()
	var calls atomic.Int64
	newRouter := func() *eventbus.Router {
		r := eventbus.NewRouter(js, eventbus.WithService("svc"))
		testpbv1.SubscribePing(r, func(context.Context, *testpbv1.Ping, eventbus.Meta) error {
			calls.Add(1)
			return eventbus.Permanent(errors.New("poison"))
		})
		return r
	}
	if err := newRouter().Provision(ctx); err != nil {
		t.Fatal(err)
	}
	const durable = "svc-eventbus_test_ping"
	const n = 200
	publishRange := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := testpbv1.PublishPing(ctx, js, ping(fmt.Sprintf("p%d", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	publishRange(0, n/2)
	abandon(t, js, durable, n/2)
	dlq := openDLQ(t, js, "svc")
	stop := startRouter(t, newRouter())
	eventually(t, 15*time.Second, func() bool {
		c, err := dlq.Count(ctx)
		return err == nil && c > 0
	})
	stop() // mid-way through the first half, or just after it
	publishRange(n/2, n)
	abandon(t, js, durable, n/2)
	if c, _ := dlq.Count(ctx); c > n/2 {
		t.Fatalf("%d dead letters before the restart, want at most %d", c, n/2)
	}
	startRouter(t, newRouter())
	dls := waitDeadLetters(t, dlq, n, 30*time.Second)

	// The same advisory once more: the forwarder handles it and the DLQ
	// deduplicates it.
	adv, err := js.Stream(ctx, testpbv1.PingStream+"_ADVISORIES")
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream":%q,"consumer":%q,"stream_seq":%d,"deliveries":1}`,
		testpbv1.PingStream, durable, dls[0].StreamSeq)
	if err := nc.Publish("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+testpbv1.PingStream+"."+durable, []byte(body)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		info, err := adv.Info(ctx)
		return err == nil && info.State.LastSeq == n+1 && info.State.Msgs == 0
	})
	if c, _ := dlq.Count(ctx); c != n {
		t.Fatalf("%d dead letters after a repeated advisory, want %d", c, n)
	}
	seen := map[uint64]bool{}
	for _, dl := range dls {
		if seen[dl.StreamSeq] {
			t.Fatalf("sequence %d dead-lettered twice", dl.StreamSeq)
		}
		seen[dl.StreamSeq] = true
		if !strings.Contains(dl.Reason, "max deliveries (1) reached") {
			t.Fatalf("dead letter of #%d has reason %q, want the forwarder's max deliveries", dl.StreamSeq, dl.Reason)
		}
	}
	if c := calls.Load(); c != 0 {
		t.Fatalf("the handler was called %d times for abandoned messages, want 0", c)
	}
}
