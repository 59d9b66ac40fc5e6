package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/chatconsumer/internal/app"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/chatconsumer/internal/testenv"
	"github.com/activitychat/chat/services/internal/testwait"
)

// stack is one test's servers: NATS, the chat service and a JetStream
// client for publishing.
type stack struct {
	natsURL string
	chat    *testenv.Chat
	nc      *nats.Conn
	js      jetstream.JetStream
}

// newStack starts NATS and the chat service; wrap, when not nil, wraps the
// chat service's handler.
func newStack(t *testing.T, wrap func(http.Handler) http.Handler) *stack {
	t.Helper()
	n := testenv.StartNATS(t)
	c := testenv.StartChatWrapped(t, wrap)
	nc, js := testenv.Connect(t, n.ClientURL())
	return &stack{natsURL: n.ClientURL(), chat: c, nc: nc, js: js}
}

// config returns a consumer configuration for the stack.
func (s *stack) config() *config.Config {
	return testenv.Config(s.natsURL, s.chat.URL())
}

// runApp starts a consumer with cfg and waits until it is ready. The
// consumer stops when t ends, and t fails if it does not stop in time.
func runApp(t *testing.T, cfg *config.Config) *app.App {
	t.Helper()
	return runAppLogging(t, cfg, testenv.Logger(t))
}

// runAppLogging is runApp with the given logger.
func runAppLogging(t *testing.T, cfg *config.Config, log *slog.Logger) *app.App {
	t.Helper()
	a, err := app.Start(cfg, app.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(cfg.Messaging.DrainTimeout + 10*time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	testwait.Eventually(t, 10*time.Second, a.Ready)
	return a
}

// at returns a timestamp at the given hour of 2024-01-01, UTC.
func at(hour, minute int) *timestamppb.Timestamp {
	return timestamppb.New(time.Date(2024, 1, 1, hour, minute, 0, 0, time.UTC))
}

func publishCreated(t *testing.T, js jetstream.JetStream, activity, creator, title string, opts ...eventbus.PublishOption) {
	t.Helper()
	if _, err := activityv1.PublishActivityCreated(context.Background(), js, &activityv1.ActivityCreated{
		ActivityId: activity, CreatorId: creator, Title: title, CreatedAt: at(10, 0),
	}, opts...); err != nil {
		t.Fatal(err)
	}
}

func publishJoined(t *testing.T, js jetstream.JetStream, activity, user string, ts *timestamppb.Timestamp, opts ...eventbus.PublishOption) {
	t.Helper()
	if _, err := activityv1.PublishActivityMemberJoined(context.Background(), js, &activityv1.ActivityMemberJoined{
		ActivityId: activity, UserId: user, JoinedAt: ts,
	}, opts...); err != nil {
		t.Fatal(err)
	}
}

func publishLeft(t *testing.T, js jetstream.JetStream, activity, user string, ts *timestamppb.Timestamp, opts ...eventbus.PublishOption) {
	t.Helper()
	if _, err := activityv1.PublishActivityMemberLeft(context.Background(), js, &activityv1.ActivityMemberLeft{
		ActivityId: activity, UserId: user, LeftAt: ts,
	}, opts...); err != nil {
		t.Fatal(err)
	}
}

// wantMembers waits until the activity's members are want.
func (s *stack) wantMembers(t *testing.T, activity string, want ...string) {
	t.Helper()
	testwait.Eventually(t, 15*time.Second, func() error {
		if got := s.chat.Members(activity); strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("members of %s = %v, want %v", activity, got, want)
		}
		return nil
	})
}

// notices returns "recipient:text" for each message of the activity.
func (s *stack) notices(t *testing.T, activity string) []string {
	t.Helper()
	var out []string
	for _, m := range s.chat.Messages(activity) {
		out = append(out, m.GetRecipientUserId()+":"+m.GetText())
	}
	return out
}

// deadLetterCount returns the number of dead letters of the ACTIVITY stream.
func (s *stack) deadLetterCount(t *testing.T) uint64 {
	t.Helper()
	dl, err := eventbus.OpenDeadLetters(context.Background(), s.js, activityv1.ActivityCreatedStream, config.Default().Messaging.ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	n, err := dl.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// deadLetters returns the dead letters of the ACTIVITY stream.
func (s *stack) deadLetters(t *testing.T) []eventbus.DeadLetter {
	t.Helper()
	dl, err := eventbus.OpenDeadLetters(context.Background(), s.js, activityv1.ActivityCreatedStream, config.Default().Messaging.ServiceName)
	if err != nil {
		t.Fatal(err)
	}
	l, err := dl.List(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// httpGet returns the status and body of a GET.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// counter sums the values of a counter family in a's registry over the
// series whose labels include all of labels.
func counter(t *testing.T, a *app.App, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				switch {
				case m.GetCounter() != nil:
					sum += m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					sum += m.GetGauge().GetValue()
				case m.GetHistogram() != nil:
					sum += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// consumerInfo returns the info of the durable consumer of subject.
func consumerInfo(t *testing.T, js jetstream.JetStream, service, subject string) *jetstream.ConsumerInfo {
	t.Helper()
	name := eventbus.DurableName(service, subject)
	c, err := js.Consumer(context.Background(), activityv1.ActivityCreatedStream, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// waitIdle waits until the consumer of every event of the contract has
// nothing pending and nothing awaiting an ack: every published event was
// handled to its end.
func (s *stack) waitIdle(t *testing.T) {
	t.Helper()
	testwait.Eventually(t, 15*time.Second, func() error {
		for _, ev := range activityv1.ActivityEvents {
			info := consumerInfo(t, s.js, "chat.consumer", ev.Subject)
			if n := info.NumPending + uint64(info.NumAckPending); n > 0 {
				return fmt.Errorf("%s: %d events not yet handled", ev.Subject, n)
			}
		}
		return nil
	})
}
