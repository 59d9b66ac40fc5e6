package eventbus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

func TestPublishThenConsume(t *testing.T) {
	_, js := runServer(t)
	rec := &recorder{}
	r := eventbus.NewRouter(js, eventbus.WithService("test"))
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	ctx := context.Background()
	for _, opts := range [][]eventbus.PublishOption{nil, {eventbus.WithBinary(), eventbus.WithMsgID("binary")}} {
		if _, err := testpbv1.PublishPing(ctx, js, ping("p1"), opts...); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, func() bool { return rec.count() == 2 })
	rec.sortBySeq()
	for i, want := range []string{eventbus.ContentTypeJSON, eventbus.ContentTypeProto} {
		if !proto.Equal(rec.events[i], ping("p1")) {
			t.Errorf("event %d = %v, want %v", i, rec.events[i], ping("p1"))
		}
		m := rec.metas[i]
		if got := m.Header.Get(eventbus.HeaderContentType); got != want {
			t.Errorf("event %d Content-Type = %q, want %q", i, got, want)
		}
		if m.Subject != testpbv1.PingSubject || m.Stream != testpbv1.PingStream || m.Delivery != 1 || m.StreamSeq != uint64(i+1) {
			t.Errorf("event %d meta = %+v", i, m)
		}
		if len(m.Traceparent) != 55 || m.MsgID == "" {
			t.Errorf("event %d traceparent %q, msg id %q", i, m.Traceparent, m.MsgID)
		}
	}
}

func TestRawJSONReachesTypedHandler(t *testing.T) {
	nc, js := runServer(t)
	rec := &recorder{}
	r := eventbus.NewRouter(js)
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	// A plain NATS publish, no headers: what `nats pub` sends.
	raw := `{"id": "p-raw", "sent_at": "2024-01-01T10:00:00Z", "detail": {"kind": "test"}, "future_field": 1}`
	if err := nc.Publish(testpbv1.PingSubject, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return rec.count() == 1 })
	if !proto.Equal(rec.events[0], ping("p-raw")) {
		t.Errorf("got %v, want %v", rec.events[0], ping("p-raw"))
	}
}

func TestDuplicateMsgIDIsDropped(t *testing.T) {
	_, js := runServer(t)
	rec := &recorder{}
	r := eventbus.NewRouter(js)
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	ctx := context.Background()
	first, err := testpbv1.PublishPing(ctx, js, ping("dup"))
	if err != nil {
		t.Fatal(err)
	}
	// The same event, binary this time: the default id is content-derived.
	second, err := testpbv1.PublishPing(ctx, js, ping("dup"), eventbus.WithBinary())
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("acks %+v then %+v: want the second to be a duplicate", first, second)
	}
	if _, err := testpbv1.PublishPing(ctx, js, ping("other")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return rec.count() == 2 })
	time.Sleep(200 * time.Millisecond)
	if n := rec.count(); n != 2 {
		t.Fatalf("handled %d events, want 2", n)
	}
}

func TestPublishRejectsInvalidEvent(t *testing.T) {
	_, js := runServer(t)
	bad := ping("has space")
	_, err := testpbv1.PublishPing(context.Background(), js, bad)
	if !errors.Is(err, eventbus.ErrInvalid) || !strings.Contains(err.Error(), "id:") {
		t.Fatalf("err = %v, want ErrInvalid naming id", err)
	}
}

func TestRetryWithBackoffThenDeadLetter(t *testing.T) {
	_, js := runServer(t)
	retry := eventbus.Retry{MaxRetries: 3, InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2, MaxHold: time.Second}
	rec := &recorder{fail: func(*testpbv1.Ping, eventbus.Meta) error { return errors.New("chat said no") }}
	r := eventbus.NewRouter(js, eventbus.WithRetry(retry))
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	ack, err := testpbv1.PublishPing(context.Background(), js, ping("retry"))
	if err != nil {
		t.Fatal(err)
	}
	dl := deadLetters(t, js, 1)[0]
	if n := rec.count(); n != 4 {
		t.Fatalf("deliveries = %d, want MaxRetries+1 = 4", n)
	}
	for i := 1; i < 4; i++ {
		gap := rec.times[i].Sub(rec.times[i-1])
		want := retry.Backoff(i)
		if gap < want || gap > want+400*time.Millisecond {
			t.Errorf("retry %d came after %s, want about %s", i, gap, want)
		}
		if rec.metas[i].Delivery != uint64(i+1) {
			t.Errorf("delivery %d has Delivery %d", i+1, rec.metas[i].Delivery)
		}
	}
	if dl.StreamSeq != ack.Sequence || dl.Deliveries != 4 || dl.Subject != testpbv1.PingSubject ||
		!strings.Contains(dl.Reason, "retries exhausted after 4 handler failures: chat said no") {
		t.Errorf("dead letter = %+v", dl)
	}
}

func TestPermanentFailuresAreDeadLetteredOnFirstDelivery(t *testing.T) {
	_, js := runServer(t)
	rec := &recorder{fail: func(ev *testpbv1.Ping, _ eventbus.Meta) error {
		if ev.GetId() == "refused" {
			return eventbus.Permanent(errors.New("owner cannot leave"))
		}
		return nil
	}}
	r := eventbus.NewRouter(js)
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	poison := []struct {
		name, contentType, data, reason string
	}{
		{"malformed JSON", "", `{"id": "p1",`, "cannot decode payload"},
		{"wrong JSON type", "application/json", `{"id": 7, "sent_at": "2024-01-01T10:00:00Z", "detail": {"kind": "k"}}`, "cannot decode payload"},
		{"missing id", "", `{"sent_at": "2024-01-01T10:00:00Z", "detail": {"kind": "k"}}`, "invalid event: id: is required"},
		{"bad timestamp", "", `{"id": "p1", "sent_at": "yesterday", "detail": {"kind": "k"}}`, "cannot decode payload"},
		{"oversized field", "", `{"id": "` + strings.Repeat("x", 65) + `", "sent_at": "2024-01-01T10:00:00Z", "detail": {"kind": "k"}}`, "id: must be at most 64 characters"},
		{"unknown content type", "text/csv", `id,sent_at`, `unknown content type: "text/csv"`},
		{"handler says permanent", "", `{"id": "refused", "sent_at": "2024-01-01T10:00:00Z", "detail": {"kind": "k"}}`, "owner cannot leave"},
	}
	for _, p := range poison {
		msg := nats.NewMsg(testpbv1.PingSubject)
		if p.contentType != "" {
			msg.Header.Set(eventbus.HeaderContentType, p.contentType)
		}
		msg.Data = []byte(p.data)
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	// The stream keeps flowing behind the poison.
	if _, err := testpbv1.PublishPing(context.Background(), js, ping("good")); err != nil {
		t.Fatal(err)
	}
	bySeq := map[uint64]eventbus.DeadLetter{}
	for _, dl := range deadLetters(t, js, len(poison)) {
		bySeq[dl.StreamSeq] = dl
	}
	for i, p := range poison {
		t.Run(p.name, func(t *testing.T) {
			dl, ok := bySeq[uint64(i+1)]
			if !ok {
				t.Fatalf("no dead letter of sequence %d", i+1)
			}
			if dl.Deliveries != 1 || !strings.Contains(dl.Reason, p.reason) {
				t.Errorf("deliveries %d, reason %q; want 1 and %q", dl.Deliveries, dl.Reason, p.reason)
			}
			if string(dl.Data) != p.data {
				t.Errorf("data %q, want the original %q", dl.Data, p.data)
			}
			if got := dl.Header.Get(eventbus.HeaderContentType); got != p.contentType {
				t.Errorf("Content-Type %q, want the original %q", got, p.contentType)
			}
		})
	}
	eventually(t, 5*time.Second, func() bool { return rec.count() == 2 }) // refused + good
}

// A durable consumer deleted under a running router is created again.
func TestDeletedConsumerIsCreatedAgain(t *testing.T) {
	_, js := runServer(t)
	rec := &recorder{}
	r := eventbus.NewRouter(js, eventbus.WithService("svc"))
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	ctx := context.Background()
	if err := js.DeleteConsumer(ctx, testpbv1.PingStream, "svc-eventbus_test_ping"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := testpbv1.PublishPing(ctx, js, ping("after-delete")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() bool { return rec.count() == 1 })
}
