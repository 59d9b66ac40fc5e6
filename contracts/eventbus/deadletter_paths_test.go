package eventbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// defaultService is the service of a router built without WithService.
const defaultService = "eventbus"

// defaultDurable is the durable consumer of Ping of the default service.
const defaultDurable = "eventbus-eventbus_test_ping"

// runServerWith is runServer with the server options changed by opt.
func runServerWith(t testing.TB, opt func(*server.Options)) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	o := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	}
	opt(o)
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// openDLQ opens the Ping dead letters of service.
func openDLQ(t testing.TB, js jetstream.JetStream, service string) *eventbus.DeadLetters {
	t.Helper()
	dlq, err := eventbus.OpenDeadLetters(context.Background(), js, testpbv1.PingStream, service)
	if err != nil {
		t.Fatal(err)
	}
	return dlq
}

// waitDeadLetters returns the dead letters of service once there are n.
func waitDeadLetters(t testing.TB, dlq *eventbus.DeadLetters, n int, within time.Duration) []eventbus.DeadLetter {
	t.Helper()
	var got []eventbus.DeadLetter
	var err error
	eventually(t, within, func() bool {
		got, err = dlq.List(context.Background(), 0, 0)
		return err == nil && len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("dead letters: got %d, want %d", len(got), n)
	}
	return got
}

// abandon plays a process that dies holding each of the next n messages of
// the durable Ping consumer on its last allowed delivery: it sets the
// consumer's MaxDeliver to 1 with a short ack wait, fetches the n messages
// and never answers them, and pulls until the server has published a
// MAX_DELIVERIES advisory for each, which the advisory stream captures.
// The router that owns the durable must not be running; when it starts, it
// sets the consumer's config back, and the abandoned messages are not
// delivered again: only the forwarder can dead-letter them.
func abandon(t testing.TB, js jetstream.JetStream, durable string, n int) {
	t.Helper()
	ctx := context.Background()
	c, err := js.Consumer(ctx, testpbv1.PingStream, durable)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.CachedInfo().Config
	cfg.MaxDeliver, cfg.AckWait = 1, 100*time.Millisecond
	if c, err = js.UpdateConsumer(ctx, testpbv1.PingStream, cfg); err != nil {
		t.Fatal(err)
	}
	advs, err := js.Stream(ctx, testpbv1.PingStream+"_ADVISORIES")
	if err != nil {
		t.Fatal(err)
	}
	info, err := advs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := info.State.LastSeq + uint64(n)
	for got := 0; got < n; {
		batch, err := c.Fetch(n-got, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for range batch.Messages() { // never answered
			got++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, func() bool {
		// A pull lets the server see the expired deliveries.
		if b, _ := c.FetchNoWait(n); b != nil {
			for m := range b.Messages() {
				t.Errorf("message #%d delivered again after MaxDeliver 1", seqOf(m))
			}
		}
		info, err := advs.Info(ctx)
		return err == nil && info.State.LastSeq >= want
	})
}

// seqOf returns the stream sequence of m, or 0.
func seqOf(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Stream
}

// counter returns the value of the counter name with labels in reg.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// poison is a handler that fails every event for good.
func poison(context.Context, *testpbv1.Ping, eventbus.Meta) error {
	return eventbus.Permanent(errors.New("poison"))
}

// A message whose process died holding it (MAX_DELIVERIES) and whose
// original a stream limit removed before the forwarder ran is still
// recorded, with the reason, a marker that the payload is lost, and a
// metric. Before, the forwarder logged it and dropped it.
func TestOriginalGoneIsStillRecorded(t *testing.T) {
	_, js := runServer(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	r := eventbus.NewRouter(js, eventbus.WithMetrics(reg))
	testpbv1.SubscribePing(r, poison)
	if err := r.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	ack, err := testpbv1.PublishPing(ctx, js, ping("gone"))
	if err != nil {
		t.Fatal(err)
	}
	// A process takes the message on its only allowed delivery and dies.
	c, err := js.Consumer(ctx, testpbv1.PingStream, defaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.CachedInfo().Config
	cfg.MaxDeliver, cfg.AckWait = 1, 100*time.Millisecond
	if _, err := js.UpdateConsumer(ctx, testpbv1.PingStream, cfg); err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() { // never acknowledged
	}
	advs, err := js.Stream(ctx, testpbv1.PingStream+"_ADVISORIES")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		// A pull lets the server see the expired delivery.
		b, _ := c.FetchNoWait(1)
		if b != nil {
			for range b.Messages() {
			}
		}
		info, err := advs.Info(ctx)
		return err == nil && info.State.Msgs > 0
	})
	// A limit removes the original before any forwarder runs.
	src, err := js.Stream(ctx, testpbv1.PingStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.DeleteMsg(ctx, ack.Sequence); err != nil {
		t.Fatal(err)
	}
	startRouter(t, r)

	dl := waitDeadLetters(t, openDLQ(t, js, defaultService), 1, 15*time.Second)[0]
	if dl.Payload != eventbus.PayloadLost || len(dl.Data) != 0 || dl.StreamSeq != ack.Sequence ||
		dl.Subject != testpbv1.PingSubject || dl.Consumer != defaultDurable || !strings.Contains(dl.Reason, "max deliveries") {
		t.Fatalf("dead letter = %+v", dl)
	}
	if why := dl.Header.Get(eventbus.HeaderDLQPayloadReason); !strings.Contains(why, "no longer in its stream") {
		t.Errorf("%s = %q", eventbus.HeaderDLQPayloadReason, why)
	}
	if n := counter(t, reg, "messaging_dead_letters_incomplete_total", map[string]string{"cause": "original_lost"}); n != 1 {
		t.Errorf("messaging_dead_letters_incomplete_total{cause=original_lost} = %v, want 1", n)
	}
	if _, err := openDLQ(t, js, defaultService).Replay(ctx, dl.Seq); !errors.Is(err, eventbus.ErrReplayRefused) {
		t.Errorf("replay of a dead letter without payload: %v, want ErrReplayRefused", err)
	}
}

// A forwarder whose consumer is created again, after an operator deleted it
// or it was lost, does not forward the advisories it already forwarded,
// neither on a work-queue advisory stream (what the router creates) nor on
// a limits one (what an earlier release created). Before, it started from
// the first advisory and, once the DLQ's duplicate window had passed,
// brought back dead letters an operator had replayed or purged.
func TestRecreatedForwarderDoesNotRepeat(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retention jetstream.RetentionPolicy
	}{
		{"work queue", jetstream.WorkQueuePolicy},
		{"limits of an earlier release", jetstream.LimitsPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, js := runServer(t)
			ctx := context.Background()
			// A DLQ whose duplicate window has long passed when the
			// forwarder is created again.
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
				Name: testpbv1.PingStream + "_DLQ", Subjects: []string{testpbv1.PingSubject + ".dlq.*"},
				Duplicates: 100 * time.Millisecond,
			}); err != nil {
				t.Fatal(err)
			}
			if tc.retention == jetstream.LimitsPolicy {
				if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
					Name: testpbv1.PingStream + "_ADVISORIES", MaxAge: 7 * 24 * time.Hour,
					Subjects: []string{
						"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + testpbv1.PingStream + ".*",
						"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + testpbv1.PingStream + ".*",
					},
				}); err != nil {
					t.Fatal(err)
				}
			}
			newRouter := func() *eventbus.Router {
				r := eventbus.NewRouter(js)
				testpbv1.SubscribePing(r, poison)
				return r
			}
			if err := newRouter().Provision(ctx); err != nil {
				t.Fatal(err)
			}
			const n = 3
			for i := range n {
				if _, err := testpbv1.PublishPing(ctx, js, ping(fmt.Sprintf("p%d", i))); err != nil {
					t.Fatal(err)
				}
			}
			// The dead letters come from the forwarder: a process died
			// holding each message on its last delivery.
			abandon(t, js, defaultDurable, n)
			stop := startRouter(t, newRouter())
			dlq := openDLQ(t, js, defaultService)
			for _, dl := range waitDeadLetters(t, dlq, n, 15*time.Second) {
				if !strings.Contains(dl.Reason, "max deliveries") {
					t.Fatalf("dead letter of #%d has reason %q, want the forwarder's max deliveries", dl.StreamSeq, dl.Reason)
				}
			}
			advs, err := js.Stream(ctx, testpbv1.PingStream+"_ADVISORIES")
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, func() bool {
				info, err := advs.Info(ctx)
				return err == nil && info.State.Msgs == 0
			})
			stop()
			// Wait out the duplicate window of the dead letters' ids: a
			// probe stored after them is no longer a duplicate.
			probe := func() bool {
				m := nats.NewMsg(eventbus.DLQSubject(testpbv1.PingSubject, defaultService))
				m.Header.Set(nats.MsgIdHdr, "probe")
				ack, err := js.PublishMsg(ctx, m)
				return err == nil && !ack.Duplicate
			}
			probe()
			eventually(t, 10*time.Second, probe)
			if err := dlq.Purge(ctx); err != nil {
				t.Fatal(err)
			}
			if err := js.DeleteConsumer(ctx, testpbv1.PingStream+"_ADVISORIES", defaultService+"-dlq-forwarder"); err != nil {
				t.Fatal(err)
			}
			// The forwarder's new consumer has nothing to read.
			startRouter(t, newRouter())
			eventually(t, 10*time.Second, func() bool {
				c, err := js.Consumer(ctx, testpbv1.PingStream+"_ADVISORIES", defaultService+"-dlq-forwarder")
				if err != nil {
					return false
				}
				info, err := c.Info(ctx)
				return err == nil && info.NumPending == 0 && info.NumAckPending == 0
			})
			if c, _ := dlq.Count(ctx); c != 0 {
				t.Fatalf("%d dead letters came back after the forwarder's consumer was created again", c)
			}
		})
	}
}

// oversizedPing returns a JSON ping whose message, headers included, is
// 200 bytes under maxPayload: it fits, its dead letter does not.
func oversizedPing(t testing.TB, id string, maxPayload int) *nats.Msg {
	t.Helper()
	p := ping(id)
	msg, err := eventbus.NewMsg(context.Background(), testpbv1.PingEvent, p)
	if err != nil {
		t.Fatal(err)
	}
	hdr := 0
	for k, vs := range msg.Header {
		for _, v := range vs {
			hdr += len(k) + len(v) + 4
		}
	}
	p.Unchecked = strings.Repeat("x", maxPayload-len(msg.Data)-hdr-200)
	msg, err = eventbus.NewMsg(context.Background(), testpbv1.PingEvent, p)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// An original whose dead letter would exceed the max payload is
// dead-lettered with what fits, a marker, the reason and where to fetch
// the original; Replay republishes the whole original. Before, the
// forwarder retried it every second, forever.
func TestOversizedOriginalIsDeadLetteredWithMarker(t *testing.T) {
	const maxPayload = 16 << 10
	nc, js := runServerWith(t, func(o *server.Options) { o.MaxPayload = maxPayload })
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	var ok bool
	var mu sync.Mutex
	rec := &recorder{fail: func(*testpbv1.Ping, eventbus.Meta) error {
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			return eventbus.Permanent(errors.New("too big to handle"))
		}
		return nil
	}}
	r := eventbus.NewRouter(js, eventbus.WithMetrics(reg))
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)

	msg := oversizedPing(t, "big", maxPayload)
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	dlq := openDLQ(t, js, defaultService)
	dl := waitDeadLetters(t, dlq, 1, 15*time.Second)[0]
	if dl.Payload != eventbus.PayloadTruncated || dl.PayloadSize != len(msg.Data) || dl.StreamSeq != ack.Sequence || dl.Stream != testpbv1.PingStream {
		t.Fatalf("dead letter = Payload %q PayloadSize %d Stream %s #%d", dl.Payload, dl.PayloadSize, dl.Stream, dl.StreamSeq)
	}
	if len(dl.Data) == 0 || !bytes.HasPrefix(msg.Data, dl.Data) || len(dl.Data) >= len(msg.Data) {
		t.Fatalf("dead letter holds %d bytes, want a prefix of the %d-byte original", len(dl.Data), len(msg.Data))
	}
	if why := dl.Header.Get(eventbus.HeaderDLQPayloadReason); !strings.Contains(why, "max payload") || dl.Reason != "too big to handle" {
		t.Errorf("reasons: %q, %q", why, dl.Reason)
	}
	if size := len(dl.Data) + headerBytes(dl.Header); int64(size) > nc.MaxPayload() {
		t.Errorf("dead letter is %d bytes, over the max payload %d", size, nc.MaxPayload())
	}
	if n := counter(t, reg, "messaging_dead_letters_incomplete_total", map[string]string{"cause": "truncated"}); n != 1 {
		t.Errorf("messaging_dead_letters_incomplete_total{cause=truncated} = %v, want 1", n)
	}

	mu.Lock()
	ok = true
	mu.Unlock()
	if _, err := dlq.Replay(ctx, dl.Seq); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return rec.count() == 2 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.events[1].GetUnchecked(); len(got) != len(oversizedPingUnchecked(msg)) {
		t.Errorf("the replay handled a %d-byte field, want the whole original", len(got))
	}
}

func oversizedPingUnchecked(msg *nats.Msg) string {
	p := new(testpbv1.Ping)
	_ = eventbus.Decode(msg.Header.Get(eventbus.HeaderContentType), msg.Data, p)
	return p.GetUnchecked()
}

// headerBytes is the size of h as NATS sends it.
func headerBytes(h nats.Header) int {
	n := len("NATS/1.0\r\n") + 2
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// Dead letters the DLQ stream rejects (here: an operator set its max
// message size below the originals) are retried a bounded number of times
// and then recorded without payload; 70 of them do not keep a later dead
// letter out. Before, each was retried forever and 64 of them stopped all
// dead-lettering.
func TestUnforwardableAdvisoriesDoNotStall(t *testing.T) {
	defer eventbus.SetForwardBackoff(10 * time.Millisecond)()
	_, js := runServer(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: testpbv1.PingStream + "_DLQ", Subjects: []string{testpbv1.PingSubject + ".dlq.*"},
		MaxMsgSize: 2048, Duplicates: 10 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r := eventbus.NewRouter(js, eventbus.WithMetrics(reg), eventbus.WithLogger(slog.New(slog.DiscardHandler)))
	testpbv1.SubscribePing(r, poison)
	if err := r.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 70
	for i := range n {
		msg := oversizedPing(t, fmt.Sprintf("big%d", i), 4096)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	ack, err := testpbv1.PublishPing(ctx, js, ping("small"))
	if err != nil {
		t.Fatal(err)
	}
	// A process died holding each on its last delivery: the forwarder, not
	// the subscription, has to store them.
	abandon(t, js, defaultDurable, n+1)
	startRouter(t, r)
	dlq := openDLQ(t, js, defaultService)
	var small *eventbus.DeadLetter
	eventually(t, 60*time.Second, func() bool {
		all, err := dlq.List(ctx, 0, 0)
		if err != nil {
			return false
		}
		for i := range all {
			if all[i].StreamSeq == ack.Sequence {
				small = &all[i]
			}
		}
		return small != nil
	})
	if small.Payload != "" {
		t.Errorf("the later dead letter is incomplete: %q", small.Payload)
	}
	all := waitDeadLetters(t, dlq, n+1, 60*time.Second)
	for _, dl := range all {
		if dl.StreamSeq == ack.Sequence {
			continue
		}
		if dl.Payload != eventbus.PayloadLost || !strings.Contains(dl.Header.Get(eventbus.HeaderDLQPayloadReason), "forwarding failed") {
			t.Fatalf("dead letter %d: Payload %q, %q", dl.Seq, dl.Payload, dl.Header.Get(eventbus.HeaderDLQPayloadReason))
		}
	}
	if c := counter(t, reg, "messaging_dead_letters_incomplete_total", map[string]string{"cause": "forward_failed"}); c != n {
		t.Errorf("messaging_dead_letters_incomplete_total{cause=forward_failed} = %v, want %d", c, n)
	}
}

// A message published straight to a dead-letter subject with a forged
// Dlq-Subject is not replayed: nothing is published and the stream the
// header names is intact. Before, Replay published to the header's subject
// with the operator's credentials, here purging the stream.
func TestForgedDeadLetterSubjectIsRefused(t *testing.T) {
	nc, js := runServer(t)
	ctx := context.Background()
	r := eventbus.NewRouter(js)
	testpbv1.SubscribePing(r, func(context.Context, *testpbv1.Ping, eventbus.Meta) error { return nil })
	startRouter(t, r)
	for i := range 5 {
		if _, err := testpbv1.PublishPing(ctx, js, ping(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	src, err := js.Stream(ctx, testpbv1.PingStream)
	if err != nil {
		t.Fatal(err)
	}
	before, err := src.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	purge := "$JS.API.STREAM.PURGE." + testpbv1.PingStream
	for _, subject := range []string{
		eventbus.DLQSubject(testpbv1.PingSubject, defaultService), // where this service's dead letters live
		testpbv1.PingSubject + ".dlq.other",                       // another service's
	} {
		forged := nats.NewMsg(subject)
		forged.Header.Set(eventbus.HeaderDLQSubject, purge)
		forged.Header.Set(eventbus.HeaderDLQStream, testpbv1.PingStream)
		forged.Data = []byte(`{}`)
		fack, err := js.PublishMsg(ctx, forged)
		if err != nil {
			t.Fatal(err)
		}
		_, err = openDLQ(t, js, defaultService).Replay(ctx, fack.Sequence)
		if !errors.Is(err, eventbus.ErrReplayRefused) && !errors.Is(err, eventbus.ErrNotFound) {
			t.Fatalf("replay of a forged dead letter on %s: %v, want ErrReplayRefused or ErrNotFound", subject, err)
		}
		t.Logf("%s: %v", subject, err)
	}
	// The purge request, had it been sent, is answered by now.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	after, err := src.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.Msgs != before.State.Msgs || after.State.LastSeq != before.State.LastSeq {
		t.Fatalf("stream %s went from %d messages (last %d) to %d (last %d)", testpbv1.PingStream,
			before.State.Msgs, before.State.LastSeq, after.State.Msgs, after.State.LastSeq)
	}
}

// Two services consume one subject and both dead-letter an event: each
// sees only its own dead letter; a replay reaches only its own consumer,
// with the original subject in Meta; a purge removes only its own. Before,
// the DLQ was per subject: both saw both, a replay reached both services,
// and a purge removed the other service's dead letters.
func TestDeadLettersArePerService(t *testing.T) {
	_, js := runServer(t)
	ctx := context.Background()
	var mu sync.Mutex
	fixed := false
	a := &recorder{fail: func(*testpbv1.Ping, eventbus.Meta) error {
		mu.Lock()
		defer mu.Unlock()
		if !fixed {
			return eventbus.Permanent(errors.New("a rejects"))
		}
		return nil
	}}
	b := &recorder{fail: func(ev *testpbv1.Ping, _ eventbus.Meta) error {
		if ev.GetId() == "sentinel" {
			return nil
		}
		return eventbus.Permanent(errors.New("b rejects"))
	}}
	ra := eventbus.NewRouter(js, eventbus.WithService("a"))
	testpbv1.SubscribePing(ra, a.handle)
	rb := eventbus.NewRouter(js, eventbus.WithService("b"), eventbus.WithConcurrency(1))
	testpbv1.SubscribePing(rb, b.handle)
	startRouter(t, ra)
	startRouter(t, rb)

	if _, err := testpbv1.PublishPing(ctx, js, ping("both")); err != nil {
		t.Fatal(err)
	}
	dlqA, dlqB := openDLQ(t, js, "a"), openDLQ(t, js, "b")
	la := waitDeadLetters(t, dlqA, 1, 15*time.Second)
	lb := waitDeadLetters(t, dlqB, 1, 15*time.Second)
	if la[0].Consumer != "a-eventbus_test_ping" || lb[0].Consumer != "b-eventbus_test_ping" {
		t.Fatalf("consumers: a sees %s, b sees %s", la[0].Consumer, lb[0].Consumer)
	}
	if _, err := dlqA.Get(ctx, lb[0].Seq); !errors.Is(err, eventbus.ErrNotFound) {
		t.Errorf("a gets b's dead letter: %v", err)
	}
	if err := dlqA.Delete(ctx, lb[0].Seq); !errors.Is(err, eventbus.ErrNotFound) {
		t.Errorf("a deletes b's dead letter: %v", err)
	}

	mu.Lock()
	fixed = true
	mu.Unlock()
	rack, err := dlqA.Replay(ctx, la[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return a.count() == 2 })
	a.mu.Lock()
	if m := a.metas[1]; m.Subject != testpbv1.PingSubject || m.StreamSeq != rack.Sequence {
		t.Errorf("replay seen by a as subject %q sequence %d, want %q %d", m.Subject, m.StreamSeq, testpbv1.PingSubject, rack.Sequence)
	}
	a.mu.Unlock()
	// b handles in stream order; once it has the later sentinel, it would
	// have had the replay.
	sack, err := testpbv1.PublishPing(ctx, js, ping("sentinel"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.metas) > 0 && b.metas[len(b.metas)-1].StreamSeq == sack.Sequence
	})
	if n := b.count(); n != 2 {
		t.Fatalf("b handled %d events, want 2: the replay for a reached b", n)
	}

	if _, err := testpbv1.PublishPing(ctx, js, ping("again")); err != nil {
		t.Fatal(err)
	}
	waitDeadLetters(t, dlqB, 2, 15*time.Second)
	if err := dlqA.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := dlqB.Count(ctx); c != 2 {
		t.Fatalf("b has %d dead letters after a purged its own, want 2", c)
	}
	if c, _ := dlqA.Count(ctx); c != 0 {
		t.Fatalf("a has %d dead letters after its purge", c)
	}
}

// Provisioning creates streams with documented limits and warns about an
// existing stream whose limits could remove a message before it is
// dead-lettered.
func TestProvisionLimits(t *testing.T) {
	_, js := runServer(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: testpbv1.PingStream, Subjects: []string{testpbv1.PingSubject},
		MaxAge: time.Hour, MaxMsgs: 100, Discard: jetstream.DiscardOld,
	}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	r := eventbus.NewRouter(js, eventbus.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	testpbv1.SubscribePing(r, poison)
	if err := r.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"max_age 1h0m0s", "max_msgs 100 with discard old"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no warning about %q in:\n%s", want, logs.String())
		}
	}
	for name, want := range map[string]eventbus.StreamLimits{
		testpbv1.PingStream + "_ADVISORIES": eventbus.DefaultAdvisoryStreamLimits,
		testpbv1.PingStream + "_DLQ":        eventbus.DefaultDeadLetterStreamLimits,
	} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		if strings.HasSuffix(name, "_ADVISORIES") && cfg.Retention != jetstream.WorkQueuePolicy {
			t.Errorf("%s: retention %s, want work queue", name, cfg.Retention)
		}
		if cfg.MaxAge != want.MaxAge || cfg.MaxBytes != want.MaxBytes || cfg.Discard != jetstream.DiscardNew {
			t.Errorf("%s: max_age %s max_bytes %d discard %s", name, cfg.MaxAge, cfg.MaxBytes, cfg.Discard)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// After an upgrade, the advisories that an earlier release forwarded and
// acknowledged on its limits advisory stream, without deleting them, are
// removed when the forwarder starts, so that a consumer created again
// later does not forward them a second time.
func TestUpgradeRemovesForwardedAdvisories(t *testing.T) {
	_, js := runServer(t)
	ctx := context.Background()
	advName := testpbv1.PingStream + "_ADVISORIES"
	terminated := "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + testpbv1.PingStream + "." + defaultDurable
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: advName, MaxAge: 7 * 24 * time.Hour,
		Subjects: []string{
			"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + testpbv1.PingStream + ".*",
			"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + testpbv1.PingStream + ".*",
		},
	}); err != nil {
		t.Fatal(err)
	}
	r := eventbus.NewRouter(js)
	testpbv1.SubscribePing(r, poison)
	if err := r.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	// The earlier release: a message is terminated, and its forwarder
	// acknowledges the advisory.
	if _, err := testpbv1.PublishPing(ctx, js, ping("old")); err != nil {
		t.Fatal(err)
	}
	sub, err := js.Consumer(ctx, testpbv1.PingStream, defaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.TermWithReason("poison"); err != nil {
		t.Fatal(err)
	}
	old, err := js.CreateOrUpdateConsumer(ctx, advName, jetstream.ConsumerConfig{
		Durable: defaultService + "-dlq-forwarder", AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubjects: []string{terminated, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + testpbv1.PingStream + "." + defaultDurable},
	})
	if err != nil {
		t.Fatal(err)
	}
	adv, err := old.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := adv.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	advs, err := js.Stream(ctx, advName)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := advs.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("advisory stream before the upgrade: %+v, %v", info.State, err)
	}

	startRouter(t, r)
	eventually(t, 10*time.Second, func() bool {
		info, err := advs.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
}
