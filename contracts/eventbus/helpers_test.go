package eventbus_test

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// runServer starts an embedded nats-server with JetStream on a file store in
// a temporary directory and returns a JetStream client connected to it.
func runServer(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
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

// startRouter runs r until the test ends and waits until it has provisioned
// and runs: ready, or holding for an unavailable dependency.
func startRouter(t testing.TB, r *eventbus.Router) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("router: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	eventually(t, 10*time.Second, func() bool {
		err := r.Ready()
		return err == nil || strings.Contains(err.Error(), " holds: ")
	})
	return stop
}

// eventually fails the test unless cond becomes true within d.
func eventually(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ping(id string) *testpbv1.Ping {
	return &testpbv1.Ping{
		Id:     id,
		SentAt: timestamppb.New(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)),
		Detail: &testpbv1.Ping_Detail{Kind: "test"},
	}
}

// recorder is a handler that records what it sees.
type recorder struct {
	mu     sync.Mutex
	events []*testpbv1.Ping
	metas  []eventbus.Meta
	times  []time.Time
	fail   func(*testpbv1.Ping, eventbus.Meta) error
}

func (r *recorder) handle(_ context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.metas = append(r.metas, meta)
	r.times = append(r.times, time.Now())
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return fail(ev, meta)
	}
	return nil
}

// sortBySeq orders what r saw by stream sequence; handlers run concurrently.
func (r *recorder) sortBySeq() {
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := make([]int, len(r.events))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return r.metas[idx[a]].StreamSeq < r.metas[idx[b]].StreamSeq })
	events, metas, times := r.events, r.metas, r.times
	r.events, r.metas, r.times = nil, nil, nil
	for _, i := range idx {
		r.events = append(r.events, events[i])
		r.metas = append(r.metas, metas[i])
		r.times = append(r.times, times[i])
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// deadLetters returns the dead letters of the test stream once there are n.
func deadLetters(t testing.TB, js jetstream.JetStream, n int) []eventbus.DeadLetter {
	t.Helper()
	return serviceDeadLetters(t, js, "eventbus", n) // the default service
}

// serviceDeadLetters waits for n dead letters of service in the ping
// stream's DLQ and returns them; it fails the test if there are more.
func serviceDeadLetters(t testing.TB, js jetstream.JetStream, service string, n int) []eventbus.DeadLetter {
	t.Helper()
	ctx := context.Background()
	dlq, err := eventbus.OpenDeadLetters(ctx, js, testpbv1.PingStream, service)
	if err != nil {
		t.Fatal(err)
	}
	var got []eventbus.DeadLetter
	eventually(t, 15*time.Second, func() bool {
		got, err = dlq.List(ctx, 0, 0)
		return err == nil && len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("dead letters: got %d, want %d", len(got), n)
	}
	return got
}
