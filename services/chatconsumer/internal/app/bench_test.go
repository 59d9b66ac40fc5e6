package app_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/services/chatconsumer/internal/app"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/chatconsumer/internal/embedded"
	"github.com/activitychat/chat/services/chatconsumer/internal/handlers"
	"github.com/activitychat/chat/services/chatconsumer/internal/testenv"
	"github.com/activitychat/chat/services/internal/testwait"
)

// benchActivities is how many activities (groups) the joins spread over.
const benchActivities = 50

// benchSeqHeader carries an event's index, so that every consumer variant
// can record when it finished that event.
const benchSeqHeader = "Bench-Seq"

// maxRate is the end-to-end rate measured by the sqlite case, which the
// latency case runs at half of.
var maxRate atomic.Int64

// BenchmarkPipeline measures the whole path: async publish (generated
// encoding), JetStream, the eventbus router, the handler, Connect and the
// chat service on SQLite. Its cases, in one run:
//
//   - sqlite: events/s at full speed, publish to applied.
//   - sqlite_half_rate: p50/p99 publish-to-applied latency at half the rate
//     sqlite reached.
//   - noop: the same path with a handler that does nothing, the ceiling of
//     the eventbus runtime.
//   - raw: nats.go consume and ack of the same messages on the same kind of
//     server, the ceiling of JetStream itself.
//   - sqlite_sync_always, noop_sync_always, raw_sync_always: the same with
//     the embedded server flushing to disk before every acknowledgement.
//
// Run it with a fixed count, for example:
//
//	go test -run '^$' -bench Pipeline -benchtime 20000x ./services/chatconsumer/internal/app
func BenchmarkPipeline(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		r := runPipeline(b, config.SyncInterval, consumeChat, 0)
		maxRate.Store(int64(r.rate))
	})
	b.Run("sqlite_half_rate", func(b *testing.B) {
		rate := float64(maxRate.Load()) / 2
		if rate == 0 {
			rate = 2500
		}
		runPipeline(b, config.SyncInterval, consumeChat, rate)
	})
	b.Run("sqlite_sync_always", func(b *testing.B) { runPipeline(b, config.SyncAlways, consumeChat, 0) })
	b.Run("noop", func(b *testing.B) { runPipeline(b, config.SyncInterval, consumeNoop, 0) })
	b.Run("raw", func(b *testing.B) { runPipeline(b, config.SyncInterval, consumeRaw, 0) })
	b.Run("noop_sync_always", func(b *testing.B) { runPipeline(b, config.SyncAlways, consumeNoop, 0) })
	b.Run("raw_sync_always", func(b *testing.B) { runPipeline(b, config.SyncAlways, consumeRaw, 0) })
}

// tracker records when each event was published and when it was applied.
type tracker struct {
	published []atomic.Int64
	applied   []atomic.Int64
	left      atomic.Int64
	done      chan struct{}
}

func newTracker(n int) *tracker {
	tr := &tracker{published: make([]atomic.Int64, n), applied: make([]atomic.Int64, n), done: make(chan struct{})}
	tr.left.Store(int64(n))
	return tr
}

// finish records that the event whose index header h holds is applied.
func (tr *tracker) finish(h nats.Header) {
	i, err := strconv.Atoi(h.Get(benchSeqHeader))
	if err != nil || i >= len(tr.applied) {
		return
	}
	if tr.applied[i].CompareAndSwap(0, time.Now().UnixNano()) && tr.left.Add(-1) == 0 {
		close(tr.done)
	}
}

// consumer starts one consumer variant on js and returns its stop function.
type consumer func(b *testing.B, js jetstream.JetStream, tr *tracker) (stop func())

// runPipeline publishes b.N joins, at rate per second or as fast as
// possible when rate is 0, through consume, and reports events/s and the
// publish-to-applied latency.
func runPipeline(b *testing.B, sync string, consume consumer, rate float64) result {
	n, err := embedded.StartNATS("bench", config.EmbeddedNats{
		Listen: "127.0.0.1:-1", StoreDir: b.TempDir(), Sync: sync, SyncInterval: time.Second,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.Shutdown)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}

	msgs := make([]*nats.Msg, b.N)
	for i := range msgs {
		ev := &activityv1.ActivityMemberJoined{
			ActivityId: fmt.Sprintf("act_%d", i%benchActivities),
			UserId:     fmt.Sprintf("u%d", i),
			JoinedAt:   timestamppb.New(time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC)),
		}
		m, err := eventbus.NewMsg(context.Background(), activityv1.ActivityMemberJoinedEvent, ev)
		if err != nil {
			b.Fatal(err)
		}
		m.Header.Set(benchSeqHeader, strconv.Itoa(i))
		msgs[i] = m
	}
	tr := newTracker(b.N)
	stop := consume(b, js, tr)
	defer stop()

	b.ResetTimer()
	start := time.Now()
	for i, m := range msgs {
		if rate > 0 {
			if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
				time.Sleep(wait)
			}
		}
		tr.published[i].Store(time.Now().UnixNano())
		for {
			_, err := js.PublishMsgAsync(m)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				b.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishing did not complete")
	}
	select {
	case <-tr.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("%d events not applied", tr.left.Load())
	}
	b.StopTimer()
	return report(b, tr, start)
}

// result is one case's figures.
type result struct {
	rate     float64
	p50, p99 time.Duration
}

func report(b *testing.B, tr *tracker, start time.Time) result {
	lat := make([]time.Duration, len(tr.applied))
	var last int64
	for i := range tr.applied {
		a := tr.applied[i].Load()
		last = max(last, a)
		lat[i] = time.Duration(a - tr.published[i].Load())
	}
	slices.Sort(lat)
	r := result{
		rate: float64(len(lat)) / time.Duration(last-start.UnixNano()).Seconds(),
		p50:  lat[len(lat)/2],
		p99:  lat[len(lat)*99/100],
	}
	b.ReportMetric(r.rate, "events/s")
	b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
	return r
}

// consumeChat runs the real handlers against the chat service on SQLite,
// recording an event as applied when its handler returns nil.
func consumeChat(b *testing.B, js jetstream.JetStream, tr *tracker) func() {
	chat := testenv.StartChat(b)
	cfg := testenv.Config("", chat.URL())
	cfg.ChatRpc.Timeout = 10 * time.Second
	cfg.Messaging.AckWait = 30 * time.Second
	client := handlers.NewClient(handlers.ClientConfig{
		Endpoint: chat.URL(), Token: testenv.Token, Timeout: cfg.ChatRpc.Timeout, MaxConns: 3 * cfg.Messaging.Concurrency,
	})
	for i := range benchActivities {
		_, err := chat.Client().CreateGroup(context.Background(), connect.NewRequest(&chatv1.CreateGroupRequest{
			ActivityId: fmt.Sprintf("act_%d", i), OwnerId: "owner", Name: "Bench",
		}))
		if err != nil {
			b.Fatal(err)
		}
	}
	h := handlers.New(client, handlers.Notices(cfg.Notices), nil)
	r := eventbus.NewRouter(js, app.RouterOptions(cfg.Messaging, prometheus.NewRegistry(), testenv.Logger(b))...)
	activityv1.SubscribeActivityMemberJoined(r, func(ctx context.Context, ev *activityv1.ActivityMemberJoined, meta eventbus.Meta) error {
		if err := h.ActivityMemberJoined(ctx, ev, meta); err != nil {
			return err
		}
		tr.finish(meta.Header)
		return nil
	})
	return runRouter(b, r)
}

// consumeNoop runs the eventbus router with a handler that does nothing.
func consumeNoop(b *testing.B, js jetstream.JetStream, tr *tracker) func() {
	cfg := testenv.Config("", "")
	r := eventbus.NewRouter(js, app.RouterOptions(cfg.Messaging, prometheus.NewRegistry(), testenv.Logger(b))...)
	activityv1.SubscribeActivityMemberJoined(r, func(_ context.Context, _ *activityv1.ActivityMemberJoined, meta eventbus.Meta) error {
		tr.finish(meta.Header)
		return nil
	})
	return runRouter(b, r)
}

func runRouter(b *testing.B, r *eventbus.Router) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx); err != nil {
			b.Error(err)
		}
	})
	testwait.Eventually(b, 10*time.Second, r.Ready)
	return func() { cancel(); wg.Wait() }
}

// consumeRaw consumes with nats.go alone: a durable pull consumer with
// explicit acks, each message acked without waiting for confirmation, as
// the eventbus router does.
func consumeRaw(b *testing.B, js jetstream.JetStream, tr *tracker) func() {
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: activityv1.ActivityMemberJoinedStream, Subjects: []string{activityv1.ActivityMemberJoinedSubject},
		Retention: jetstream.LimitsPolicy, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute,
	})
	if err != nil {
		b.Fatal(err)
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1024, AckWait: 30 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		tr.finish(m.Headers())
	}, jetstream.PullMaxMessages(128))
	if err != nil {
		b.Fatal(err)
	}
	return cc.Stop
}
