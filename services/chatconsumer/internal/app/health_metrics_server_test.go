package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/chatconsumer/internal/app"
	"github.com/activitychat/chat/services/chatconsumer/internal/testenv"
	"github.com/activitychat/chat/services/internal/testwait"
)

// TestTwoConsumersShareTheWork runs two consumers with the same service
// name on the same durable consumers: both handle events, and each event
// has its effect once.
func TestTwoConsumersShareTheWork(t *testing.T) {
	s := newStack(t, nil)
	cfg := s.config()
	cfg.Messaging.Concurrency = 8 // small batches, so that both get work
	a1 := runApp(t, cfg)
	a2 := runApp(t, cfg)
	const act, n = "act_shared", 300
	publishCreated(t, s.js, act, "owner", "Shared")
	s.wantMembers(t, act, "owner")

	want := []string{"owner"}
	for i := range n {
		user := fmt.Sprintf("u%03d", i)
		publishJoined(t, s.js, act, user, at(11, 0))
		want = append(want, user)
	}
	s.wantMembers(t, act, want...)
	testwait.Eventually(t, 10*time.Second, func() error {
		if got := len(s.notices(t, act)); got != n+1 {
			return fmt.Errorf("%d notices, want %d", got, n+1)
		}
		return nil
	})

	joined := map[string]string{"subject": activityv1.ActivityMemberJoinedSubject, "outcome": "ack"}
	c1, c2 := counter(t, a1, "messaging_handler_total", joined), counter(t, a2, "messaging_handler_total", joined)
	t.Logf("consumer 1 handled %v joins, consumer 2 %v", c1, c2)
	if c1 == 0 || c2 == 0 {
		t.Errorf("handled joins: %v and %v, want both consumers to take part", c1, c2)
	}
	if c1+c2 < n {
		t.Errorf("handled joins: %v + %v < %d", c1, c2, n)
	}
}

// TestOperationsEndpoints checks /healthz, /readyz and that /metrics shows
// the seed's three metric names, plus dead letters, redeliveries, lag and
// in-flight, and that they move.
func TestOperationsEndpoints(t *testing.T) {
	s := newStack(t, nil)
	a := runApp(t, s.config())
	ops := a.Endpoints().Ops

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(t, ops+path); code != http.StatusOK {
			t.Errorf("GET %s = %d %q, want 200", path, code, body)
		}
	}

	scrape := func() string {
		t.Helper()
		code, body := httpGet(t, ops+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics = %d", code)
		}
		return body
	}
	value := func(body, series string) string {
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, series+" ") {
				return strings.TrimPrefix(line, series+" ")
			}
		}
		return ""
	}

	publishCreated(t, s.js, "act_metrics", "owner", "Metrics")
	s.wantMembers(t, "act_metrics", "owner")
	if _, err := s.js.Publish(context.Background(), "activity.member.joined", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	poisoned := `messaging_handler_errors_total{outcome="dead_letter",subject="activity.member.joined"}`
	testwait.Eventually(t, 10*time.Second, func() error {
		// The metrics move once the stored dead letter's message is
		// terminated, a moment after the DLQ shows it.
		if s.deadLetterCount(t) != 1 || value(scrape(), poisoned) != "1" {
			return testwait.ErrNotYet
		}
		return nil
	})
	first := scrape()
	for _, name := range []string{
		"messaging_handler_duration_seconds_bucket",
		"messaging_handler_total",
		"messaging_handler_errors_total",
		"messaging_dead_letters_total",
		"messaging_consumer_lag",
		"messaging_in_flight",
	} {
		if !strings.Contains(first, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	created := `messaging_handler_total{outcome="ack",subject="activity.created"}`
	if v := value(first, created); v != "1" {
		t.Errorf("%s = %q, want 1", created, v)
	}
	if v := value(first, poisoned); v != "1" {
		t.Errorf("%s = %q, want 1", poisoned, v)
	}

	publishCreated(t, s.js, "act_metrics_2", "owner", "Metrics 2")
	s.wantMembers(t, "act_metrics_2", "owner")
	testwait.Eventually(t, 5*time.Second, func() error {
		if v := value(scrape(), created); v != "2" {
			return fmt.Errorf("%s = %q after a second event, want 2", created, v)
		}
		return nil
	})
	count := `messaging_handler_duration_seconds_count{outcome="ack",subject="activity.created"}`
	if v := value(scrape(), count); v != "2" {
		t.Errorf("%s = %q, want 2", count, v)
	}
}

// TestShutdownDrainsInFlight stops the consumer while handlers wait on a
// slow chat service: Run returns within the drain bound, the in-flight
// events are applied and acknowledged, and nothing is left pending.
func TestShutdownDrainsInFlight(t *testing.T) {
	var slow atomic.Bool
	s := newStack(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slow.Load() && strings.HasSuffix(r.URL.Path, "/AddGroupMember") {
				time.Sleep(time.Second)
			}
			next.ServeHTTP(w, r)
		})
	})
	cfg := s.config()
	a, err := app.Start(cfg, app.Options{Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = a.Run(ctx) })
	testwait.Eventually(t, 10*time.Second, a.Ready)

	const act = "act_drain"
	publishCreated(t, s.js, act, "owner", "Drain")
	s.wantMembers(t, act, "owner")
	slow.Store(true)
	const n = 10
	want := []string{"owner"}
	for i := range n {
		publishJoined(t, s.js, act, fmt.Sprintf("u%d", i), at(11, 0))
		want = append(want, fmt.Sprintf("u%d", i))
	}
	testwait.Eventually(t, 5*time.Second, func() error {
		if counter(t, a, "messaging_in_flight", nil) < n {
			return testwait.ErrNotYet
		}
		return nil
	})

	stopped := time.Now()
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("Run = %v", runErr)
	}
	if d := time.Since(stopped); d > cfg.Messaging.DrainTimeout {
		t.Errorf("Run took %s to return, more than the drain timeout %s", d, cfg.Messaging.DrainTimeout)
	}
	s.wantMembers(t, act, want...)
	info := consumerInfo(t, s.js, "chat.consumer", activityv1.ActivityMemberJoinedSubject)
	if info.NumAckPending != 0 || info.NumPending != 0 || info.NumRedelivered != 0 {
		t.Errorf("after shutdown: %d pending acks, %d pending, %d redelivered; want 0, 0, 0", info.NumAckPending, info.NumPending, info.NumRedelivered)
	}
}

// TestLogsHoldNoSecrets runs events through a consumer whose token the chat
// service rejects and checks that neither the token nor the NATS password
// reaches the log, while the failure itself does.
func TestLogsHoldNoSecrets(t *testing.T) {
	s := newStack(t, nil)
	cfg := s.config()
	const secret = "wrong-but-secret-token"
	cfg.ChatRpc.Token = secret
	var buf syncBuffer
	a := runAppLogging(t, cfg, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	publishCreated(t, s.js, "act_secret", "owner", "Secret")
	testwait.Eventually(t, 10*time.Second, func() error {
		if a.Ready() == nil {
			return testwait.ErrNotYet
		}
		return nil
	})
	testwait.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(buf.String(), "unauthenticated") {
			return testwait.ErrNotYet
		}
		return nil
	})
	if strings.Contains(buf.String(), secret) {
		t.Errorf("the log shows the token:\n%s", buf.String())
	}
	if n := s.deadLetterCount(t); n != 0 {
		t.Errorf("%d dead letters for a rejected token, want none: it is an outage", n)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
