package eventbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
// and an advisory seen twice makes one dead letter.
func TestForwarderRestartLosesAndDoublesNothing(t *testing.T) {
	nc, js := runServer(t)
	ctx := context.Background()
	newRouter := func() *eventbus.Router {
		r := eventbus.NewRouter(js, eventbus.WithService("svc"))
		testpbv1.SubscribePing(r, func(context.Context, *testpbv1.Ping, eventbus.Meta) error {
			return eventbus.Permanent(errors.New("poison"))
		})
		return r
	}
	stop := startRouter(t, newRouter())
	const n = 200
	for i := range n {
		if _, err := testpbv1.PublishPing(ctx, js, ping(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			stop() // mid-way
		}
	}
	dlq := openDLQ(t, js, "svc")
	if c, _ := dlq.Count(ctx); c >= n {
		t.Fatalf("all %d dead-lettered before the restart; the test proves nothing", c)
	}
	startRouter(t, newRouter())
	dls := waitDeadLetters(t, dlq, n, 15*time.Second)

	// The same advisory once more: the forwarder handles it and the DLQ
	// deduplicates it.
	adv, err := js.Stream(ctx, testpbv1.PingStream+"_ADVISORIES")
	if err != nil {
		t.Fatal(err)
	}
	durable := "svc-eventbus_test_ping"
	body := fmt.Sprintf(`{"type":"io.nats.jetstream.advisory.v1.terminated","stream":%q,"consumer":%q,"stream_seq":%d,"deliveries":1,"reason":"poison"}`,
		testpbv1.PingStream, durable, dls[0].StreamSeq)
	if err := nc.Publish("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED."+testpbv1.PingStream+"."+durable, []byte(body)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool {
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
	}
}
