package app_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/chat/chatserver"
	"github.com/activitychat/chat/services/chat/store/storetest"
	"github.com/activitychat/chat/services/chatconsumer/internal/app"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/chatconsumer/internal/embedded"
	"github.com/activitychat/chat/services/chatconsumer/internal/handlers"
	"github.com/activitychat/chat/services/chatconsumer/internal/testenv"
	"github.com/activitychat/chat/services/internal/testwait"
)

// benchActivities is how many activities have a group before a run starts:
// the joins and leaves spread over them.
const benchActivities = 50

// benchSeqHeader carries an event's index, so that every consumer variant
// can record when it finished that event.
const benchSeqHeader = "Bench-Seq"

// benchStall is how long a run may go without an event applied before it
// fails.
const benchStall = 30 * time.Second

// maxRate is the end-to-end rate measured by the sqlite case, which the
// latency case runs at half of.
var maxRate atomic.Int64

// BenchmarkPipeline measures the whole path: async publish (generated
// encoding), JetStream, the eventbus router, the handler, Connect and the
// chat service on SQLite, for activity.member.joined events. Its cases, in
// one run:
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
// BenchmarkReplicas runs the same path per event type, with several
// consumer replicas and on PostgreSQL. Run it with a fixed count, for
// example:
//
//	go test -run '^$' -bench Pipeline -benchtime 20000x ./services/chatconsumer/internal/app
func BenchmarkPipeline(b *testing.B) {
	chat := chatConsumer("sqlite", 1, joined)
	b.Run("sqlite", func(b *testing.B) {
		r := runPipeline(b, config.SyncInterval, chat, 0, joined)
		maxRate.Store(int64(r.rate))
	})
	b.Run("sqlite_half_rate", func(b *testing.B) {
		rate := float64(maxRate.Load()) / 2
		if rate == 0 {
			rate = 2500
		}
		runPipeline(b, config.SyncInterval, chat, rate, joined)
	})
	b.Run("sqlite_sync_always", func(b *testing.B) { runPipeline(b, config.SyncAlways, chat, 0, joined) })
	b.Run("noop", func(b *testing.B) { runPipeline(b, config.SyncInterval, consumeNoop, 0, joined) })
	b.Run("raw", func(b *testing.B) { runPipeline(b, config.SyncInterval, consumeRaw, 0, joined) })
	b.Run("noop_sync_always", func(b *testing.B) { runPipeline(b, config.SyncAlways, consumeNoop, 0, joined) })
	b.Run("raw_sync_always", func(b *testing.B) { runPipeline(b, config.SyncAlways, consumeRaw, 0, joined) })
}

// BenchmarkReplicas measures the whole path, as BenchmarkPipeline does, with
// 1, 2 and 4 consumer replicas sharing the durable consumers (each with its
// own NATS connection, router and chat client, as separate processes have)
// against one chat service on SQLite and on PostgreSQL, for each event type
// and for a mix. Its cases are <database>/<events>/r<replicas> at full
// speed and <database>/<events>/r<replicas>_half_rate, the latency at half
// the rate its full-speed case reached in the same run. The postgres cases
// run in a schema of their own in CHAT_TEST_POSTGRES_DSN's database and are
// skipped without it. For example:
//
//	go test -run '^$' -bench 'Replicas/sqlite/mix/' -benchtime 20000x ./services/chatconsumer/internal/app
func BenchmarkReplicas(b *testing.B) {
	rates := map[string]float64{}
	for _, db := range []string{"sqlite", "postgres"} {
		b.Run(db, func(b *testing.B) {
			for _, wl := range []workload{created, joined, left, mix} {
				b.Run(wl.name, func(b *testing.B) {
					for _, replicas := range []int{1, 2, 4} {
						name := fmt.Sprintf("r%d", replicas)
						chat := chatConsumer(db, replicas, wl)
						b.Run(name, func(b *testing.B) {
							rates[b.Name()] = runPipeline(b, config.SyncInterval, chat, 0, wl).rate
						})
						b.Run(name+"_half_rate", func(b *testing.B) {
							full := b.Name()[:len(b.Name())-len("_half_rate")]
							rate := rates[full] / 2
							if rate == 0 {
								b.Logf("%s did not run: at 2500 events/s", full)
								rate = 2500
							}
							runPipeline(b, config.SyncInterval, chat, rate, wl)
						})
					}
				})
			}
		})
	}
}

// A workload is the events of one kind of run and the state the chat
// service needs before it starts.
type workload struct {
	name string
	// events returns n events to publish.
	events func(n int) []event
	// seed prepares the chat service through the real handlers before the
	// timer starts, for n events.
	seed func(b *testing.B, h *handlers.Handlers, n int)
}

// benchTime is the event time of the runs' events: joins and creates at
// benchTime plus their index in milliseconds, leaves an hour later.
var benchTime = time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC)

func eventAt(i int) *timestamppb.Timestamp {
	return timestamppb.New(benchTime.Add(time.Duration(i) * time.Millisecond))
}

// An event is one activity event of a run: the message for the seeding
// handlers, and its NATS message as the generated publisher encodes it.
type event struct {
	message proto.Message
	msg     func() (*nats.Msg, error)
}

func newEvent[T proto.Message](ev eventbus.Event[T], m T) event {
	return event{message: m, msg: func() (*nats.Msg, error) { return eventbus.NewMsg(context.Background(), ev, m) }}
}

func createdEvent(activityID string, i int) event {
	return newEvent(activityv1.ActivityCreatedEvent, &activityv1.ActivityCreated{
		ActivityId: activityID, CreatorId: "owner", Title: "Bench " + activityID, CreatedAt: eventAt(i),
	})
}

func joinedEvent(activityID, userID string, i int) event {
	return newEvent(activityv1.ActivityMemberJoinedEvent, &activityv1.ActivityMemberJoined{
		ActivityId: activityID, UserId: userID, JoinedAt: eventAt(i),
	})
}

func leftEvent(activityID, userID string, i int) event {
	return newEvent(activityv1.ActivityMemberLeftEvent, &activityv1.ActivityMemberLeft{
		ActivityId: activityID, UserId: userID, LeftAt: eventAt(i + int(time.Hour/time.Millisecond)),
	})
}

func benchActivity(i int) string { return fmt.Sprintf("act_%d", i) }

// created is n activity.created events, each making a group.
var created = workload{
	name: "created",
	events: func(n int) []event {
		out := make([]event, n)
		for i := range out {
			out[i] = createdEvent(fmt.Sprintf("new_%d", i), i)
		}
		return out
	},
	seed: func(*testing.B, *handlers.Handlers, int) {},
}

// joined is n joins of new users spread over benchActivities groups.
var joined = workload{
	name: "joined",
	events: func(n int) []event { return memberEvents(n, joinedEvent) },
	seed:   seedGroups,
}

// memberEvents returns n joins or leaves, the i-th of user u<i> in
// activity i modulo benchActivities.
func memberEvents(n int, kind func(activityID, userID string, i int) event) []event {
	out := make([]event, n)
	for i := range out {
		out[i] = kind(benchActivity(i%benchActivities), "u"+strconv.Itoa(i), i)
	}
	return out
}

// left is n leaves of members spread over benchActivities groups, each
// made a member before the run.
var left = workload{
	name: "left",
	events: func(n int) []event { return memberEvents(n, leftEvent) },
	seed: func(b *testing.B, h *handlers.Handlers, n int) {
		seedGroups(b, h, n)
		handleAll(b, h, joined.events(n))
	},
}

// mix is the production shape: blocks of one created, twenty joins and
// five leaves. A join goes to one of the 50 most recent activities, or, one
// time in twenty, to the activity of the next block, whose created event
// comes later; a leave is of a recent join, published after it.
var mix = workload{
	name:   "mix",
	events: mixEvents,
	seed:   seedGroups,
}

func mixEvents(n int) []event {
	rng := rand.New(rand.NewPCG(13, 4))
	acts := make([]string, benchActivities, benchActivities+n/26+1)
	for i := range acts {
		acts[i] = benchActivity(i)
	}
	type member struct{ activity, user string }
	var members []member // joined and not left yet
	out := make([]event, 0, n)
	for i := 0; len(out) < n; i++ {
		block, pos := i/26, i%26
		next := fmt.Sprintf("mix_%d", block+1)
		switch {
		case pos == 0:
			acts = append(acts, fmt.Sprintf("mix_%d", block))
			out = append(out, createdEvent(acts[len(acts)-1], i))
		case pos%5 == 0 && len(members) > 0:
			k := len(members) - 1 - rng.IntN(min(len(members), 100))
			m := members[k]
			members = slices.Delete(members, k, k+1)
			out = append(out, leftEvent(m.activity, m.user, i))
		default:
			activity := acts[len(acts)-1-rng.IntN(benchActivities)]
			if rng.IntN(20) == 0 && (block+2)*26 <= n {
				activity = next
			}
			m := member{activity, "m" + strconv.Itoa(i)}
			members = append(members, m)
			out = append(out, joinedEvent(m.activity, m.user, i))
		}
	}
	return out
}

// seedGroups creates the benchActivities groups that joins and leaves go
// to.
func seedGroups(b *testing.B, h *handlers.Handlers, _ int) {
	events := make([]event, benchActivities)
	for i := range events {
		events[i] = createdEvent(benchActivity(i), i)
	}
	handleAll(b, h, events)
}

// handleAll hands events to the handlers, 16 at a time, and fails b when
// one fails.
func handleAll(b *testing.B, h *handlers.Handlers, events []event) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(events)); i = next.Add(1) - 1 {
				if err := handle(h, events[i].message); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal("seed:", err)
	}
}

func handle(h *handlers.Handlers, ev proto.Message) error {
	ctx := context.Background()
	switch ev := ev.(type) {
	case *activityv1.ActivityCreated:
		return h.ActivityCreated(ctx, ev, eventbus.Meta{})
	case *activityv1.ActivityMemberJoined:
		return h.ActivityMemberJoined(ctx, ev, eventbus.Meta{})
	case *activityv1.ActivityMemberLeft:
		return h.ActivityMemberLeft(ctx, ev, eventbus.Meta{})
	}
	return fmt.Errorf("no handler for %T", ev)
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

// wait waits until every event is applied, and fails when none is applied
// for stall: an event dead-lettered or stuck fails the run, however long
// it is.
func (tr *tracker) wait(stall time.Duration) error {
	tick := time.NewTicker(min(time.Second, stall/4))
	defer tick.Stop()
	last, since := tr.left.Load(), time.Now()
	for {
		select {
		case <-tr.done:
			return nil
		case <-tick.C:
			if n := tr.left.Load(); n != last {
				last, since = n, time.Now()
			} else if time.Since(since) > stall {
				return fmt.Errorf("%d of %d events not applied, none for %s", n, len(tr.applied), stall)
			}
		}
	}
}

// consumer starts one consumer variant on the NATS server at url and
// returns its stop function.
type consumer func(b *testing.B, url string, tr *tracker) (stop func())

// runPipeline publishes b.N events of wl, at rate per second or as fast as
// possible when rate is 0, through consume, and reports events/s and the
// publish-to-applied latency.
func runPipeline(b *testing.B, sync string, consume consumer, rate float64, wl workload) result {
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

	events := wl.events(b.N)
	msgs := make([]*nats.Msg, len(events))
	for i, ev := range events {
		m, err := ev.msg()
		if err != nil {
			b.Fatal(err)
		}
		m.Header.Set(benchSeqHeader, strconv.Itoa(i))
		msgs[i] = m
	}
	tr := newTracker(b.N)
	stop := consume(b, n.ClientURL(), tr)
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
	if err := tr.wait(benchStall); err != nil {
		b.Fatal(err)
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

// chatConsumer returns the consumer variant that runs the real handlers,
// in replicas routers sharing the durable consumers, against one chat
// service on db ("sqlite" or "postgres"), seeded for wl. An event counts
// as applied when its handler returns nil.
func chatConsumer(db string, replicas int, wl workload) consumer {
	return func(b *testing.B, url string, tr *tracker) func() {
		chat := startChat(b, db)
		cfg := testenv.Config(url, chat.URL())
		cfg.ChatRpc.Timeout = 10 * time.Second
		cfg.Messaging.AckWait = 30 * time.Second
		wl.seed(b, chatHandlers(chat.URL(), cfg), b.N)
		var stops []func()
		for range replicas {
			stops = append(stops, startReplica(b, url, chat.URL(), cfg, tr))
		}
		return func() {
			for _, stop := range stops {
				stop()
			}
		}
	}
}

// startChat starts the chat service on a fresh SQLite file or PostgreSQL
// schema; without CHAT_TEST_POSTGRES_DSN, postgres skips b.
func startChat(b *testing.B, db string) *testenv.Chat {
	if db == "postgres" {
		return testenv.StartChatOn(b, chatserver.DatabaseConfig{Driver: "postgres", DSN: storetest.PostgresDSN(b)})
	}
	return testenv.StartChat(b)
}

func chatHandlers(chatURL string, cfg *config.Config) *handlers.Handlers {
	client := handlers.NewClient(handlers.ClientConfig{
		Endpoint: chatURL, Token: testenv.Token, Timeout: cfg.ChatRpc.Timeout, MaxConns: 3 * cfg.Messaging.Concurrency,
	})
	return handlers.New(client, handlers.Notices(cfg.Notices), nil)
}

// startReplica starts one replica of the consumer as its process would
// run: its own NATS connection, chat client and router, registered as
// app.NewRouter registers it.
func startReplica(b *testing.B, url, chatURL string, cfg *config.Config, tr *tracker) func() {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	var opts []eventbus.SubscribeOption
	if o := cfg.Messaging.Retry.Override(); !o.IsZero() {
		opts = append(opts, eventbus.WithRetryOverride(o))
	}
	r := eventbus.NewRouter(js, app.RouterOptions(cfg.Messaging, prometheus.NewRegistry(), testenv.Logger(b))...)
	activityv1.RegisterActivityEvents(r, applied{chatHandlers(chatURL, cfg), tr}, opts...)
	stop := runRouter(b, r)
	return func() { stop(); nc.Close() }
}

// applied runs the real handlers and records an event as applied when its
// handler returns nil.
type applied struct {
	h  *handlers.Handlers
	tr *tracker
}

func (a applied) ActivityCreated(ctx context.Context, ev *activityv1.ActivityCreated, meta eventbus.Meta) error {
	return a.record(a.h.ActivityCreated(ctx, ev, meta), meta)
}

func (a applied) ActivityMemberJoined(ctx context.Context, ev *activityv1.ActivityMemberJoined, meta eventbus.Meta) error {
	return a.record(a.h.ActivityMemberJoined(ctx, ev, meta), meta)
}

func (a applied) ActivityMemberLeft(ctx context.Context, ev *activityv1.ActivityMemberLeft, meta eventbus.Meta) error {
	return a.record(a.h.ActivityMemberLeft(ctx, ev, meta), meta)
}

func (a applied) record(err error, meta eventbus.Meta) error {
	if err == nil {
		a.tr.finish(meta.Header)
	}
	return err
}

// consumeNoop runs the eventbus router with a handler that does nothing.
func consumeNoop(b *testing.B, url string, tr *tracker) func() {
	_, js := testenv.Connect(b, url)
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
func consumeRaw(b *testing.B, url string, tr *tracker) func() {
	_, js := testenv.Connect(b, url)
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

// TestTrackerWait proves that the pipeline benchmarks fail when an event is
// never applied, and finish when all are.
func TestTrackerWait(t *testing.T) {
	tr := newTracker(3)
	for i := range 2 {
		tr.finish(nats.Header{benchSeqHeader: []string{strconv.Itoa(i)}})
	}
	err := tr.wait(200 * time.Millisecond)
	if err == nil || err.Error() != "1 of 3 events not applied, none for 200ms" {
		t.Fatalf("wait with one event not applied: %v", err)
	}
	tr.finish(nats.Header{benchSeqHeader: []string{"2"}})
	if err := tr.wait(200 * time.Millisecond); err != nil {
		t.Fatalf("wait with every event applied: %v", err)
	}
}

// TestMixEvents checks the mix's shape: one created per twenty joins and
// five leaves, a leave only of a user who joined that activity before it,
// and a join only to an activity that has its group or whose created event
// comes later in the run.
func TestMixEvents(t *testing.T) {
	const n = 26 * 40
	created, joinedAt := map[string]bool{}, map[[2]string]bool{}
	for i := range benchActivities {
		created[benchActivity(i)] = true
	}
	counts := map[string]int{}
	var early []string
	for _, ev := range mixEvents(n) {
		switch m := ev.message.(type) {
		case *activityv1.ActivityCreated:
			counts["created"]++
			created[m.GetActivityId()] = true
		case *activityv1.ActivityMemberJoined:
			counts["joined"]++
			joinedAt[[2]string{m.GetActivityId(), m.GetUserId()}] = true
			if !created[m.GetActivityId()] {
				early = append(early, m.GetActivityId())
			}
		case *activityv1.ActivityMemberLeft:
			counts["left"]++
			if !joinedAt[[2]string{m.GetActivityId(), m.GetUserId()}] {
				t.Errorf("%s leaves %s without a join before", m.GetUserId(), m.GetActivityId())
			}
		}
	}
	if want := map[string]int{"created": 40, "joined": 800, "left": 200}; !maps.Equal(counts, want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	if len(early) == 0 {
		t.Error("no join comes before its activity's created event")
	}
	for _, a := range early {
		if !created[a] {
			t.Errorf("a join to %s, which is never created", a)
		}
	}
}
