package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// policyHandler implements the generated TestingPolicyEventsHandler; it
// acknowledges everything.
type policyHandler struct{}

func (policyHandler) Retried(context.Context, *testpbv1.Retried, eventbus.Meta) error { return nil }
func (policyHandler) Dropped(context.Context, *testpbv1.Dropped, eventbus.Meta) error { return nil }

// consumerFor returns the config of the durable consumer of stream that is
// filtered to subject: its FilterSubject, or the first of its FilterSubjects
// (the others are the service's replay subject).
func consumerFor(t *testing.T, js jetstream.JetStream, stream, subject string) jetstream.ConsumerConfig {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	infos := s.ListConsumers(ctx)
	for info := range infos.Info() {
		if info.Config.FilterSubject == subject ||
			(len(info.Config.FilterSubjects) > 0 && info.Config.FilterSubjects[0] == subject) {
			return info.Config
		}
	}
	if err := infos.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("no consumer of %s is filtered to %s", stream, subject)
	return jetstream.ConsumerConfig{}
}

// TestRegisterAppliesContractPolicy registers the generated policy events
// and checks the consumers the router creates: the contract's policy beats
// the router's defaults, and the options given to Register beat the policy.
func TestRegisterAppliesContractPolicy(t *testing.T) {
	routerRetry := eventbus.Retry{MaxRetries: 1, InitialInterval: time.Millisecond, MaxInterval: time.Second, Multiplier: 2}
	for _, tc := range []struct {
		name                     string
		opts                     []eventbus.SubscribeOption
		wantRetried, wantDropped int
	}{
		// Retried declares max_retries 5, Dropped 0.
		{name: "contract policy", wantRetried: 6, wantDropped: 1},
		{
			name:        "deployment override",
			opts:        []eventbus.SubscribeOption{eventbus.WithRetry(eventbus.Retry{MaxRetries: 9, InitialInterval: time.Millisecond, MaxInterval: time.Second, Multiplier: 2})},
			wantRetried: 10, wantDropped: 10,
		},
		{
			name:        "field override",
			opts:        []eventbus.SubscribeOption{eventbus.WithRetryOverride(eventbus.RetryOverride{MaxRetries: ptr(7)})},
			wantRetried: 8, wantDropped: 8,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, js := runServer(t)
			r := eventbus.NewRouter(js, eventbus.WithService("contract"), eventbus.WithRetry(routerRetry))
			testpbv1.RegisterTestingPolicyEvents(r, policyHandler{}, tc.opts...)
			// Ping declares no policy: the router's retry applies.
			testpbv1.SubscribePing(r, (&recorder{}).handle)
			startRouter(t, r)

			for subject, want := range map[string]int{
				testpbv1.RetriedSubject: tc.wantRetried,
				testpbv1.DroppedSubject: tc.wantDropped,
				testpbv1.PingSubject:    routerRetry.MaxRetries + 1,
			} {
				// MaxDeliver is the crash-loop backstop above the retry
				// budget of MaxRetries+1 handler calls.
				want += eventbus.DefaultExtraDeliveries
				if got := consumerFor(t, js, testpbv1.PingStream, subject).MaxDeliver; got != want {
					t.Errorf("%s: consumer MaxDeliver = %d, want %d (MaxRetries+1+DefaultExtraDeliveries)", subject, got, want)
				}
			}
		})
	}
}

// TestGeneratedPolicy checks the policies generated from policy.proto: every
// option set on Retried, and on Dropped the options left out take
// DefaultRetry's values.
func TestGeneratedPolicy(t *testing.T) {
	want := map[string]eventbus.Policy{
		"Retried": {
			Retry: eventbus.Retry{
				MaxRetries:      5,
				InitialInterval: 250 * time.Millisecond,
				MaxInterval:     90 * time.Second,
				Multiplier:      1.5,
				MaxHold:         45 * time.Second,
			},
			DeadLetter:  true,
			OrderingKey: "key",
		},
		"Dropped": {
			Retry: eventbus.Retry{
				MaxRetries:      0,
				InitialInterval: eventbus.DefaultRetry.InitialInterval,
				MaxInterval:     eventbus.DefaultRetry.MaxInterval,
				Multiplier:      eventbus.DefaultRetry.Multiplier,
				MaxHold:         0,
			},
			DeadLetter: false,
		},
	}
	for name, got := range map[string]eventbus.Policy{"Retried": testpbv1.RetriedPolicy, "Dropped": testpbv1.DroppedPolicy} {
		if got != want[name] {
			t.Errorf("%sPolicy = %+v, want %+v", name, got, want[name])
		}
		if err := got.Retry.Check(); err != nil {
			t.Errorf("%sPolicy.Retry.Check: %v", name, err)
		}
	}
}

// TestUnimplementedDeadLetters registers a handler that embeds the generated
// Unimplemented type and implements only Pong: a Ping is dead-lettered at
// once, with a reason that names the missing method, and a Pong is handled.
func TestUnimplementedDeadLetters(t *testing.T) {
	_, js := runServer(t)
	h := &pongOnly{}
	r := eventbus.NewRouter(js, eventbus.WithService("unimplemented"))
	testpbv1.RegisterTestingEvents(r, h)
	startRouter(t, r)

	ctx := context.Background()
	if _, err := testpbv1.PublishPing(ctx, js, ping("nobody")); err != nil {
		t.Fatal(err)
	}
	if _, err := testpbv1.PublishPong(ctx, js, &testpbv1.Pong{Id: "handled"}); err != nil {
		t.Fatal(err)
	}
	letters := serviceDeadLetters(t, js, "unimplemented", 1)
	if got := letters[0]; got.Subject != testpbv1.PingSubject || got.Deliveries != 1 ||
		!strings.Contains(got.Reason, "TestingEventsHandler.Ping is not implemented") {
		t.Errorf("dead letter %+v, want the ping after 1 delivery with a reason naming TestingEventsHandler.Ping", got)
	}
	eventually(t, 5*time.Second, func() bool { return h.pongs.Load() == 1 })
}

// pongOnly implements Pong and leaves Ping to the embedded Unimplemented
// type.
type pongOnly struct {
	testpbv1.UnimplementedTestingEventsHandler
	pongs atomic.Int64
}

func (h *pongOnly) Pong(context.Context, *testpbv1.Pong, eventbus.Meta) error {
	h.pongs.Add(1)
	return nil
}

func TestUnimplementedError(t *testing.T) {
	err := testpbv1.UnimplementedTestingPolicyEventsHandler{}.Retried(context.Background(), &testpbv1.Retried{}, eventbus.Meta{})
	if !errors.Is(err, eventbus.ErrUnimplemented) || !errors.Is(err, eventbus.ErrPermanent) {
		t.Errorf("error %v matches ErrUnimplemented %t, ErrPermanent %t; want both",
			err, errors.Is(err, eventbus.ErrUnimplemented), errors.Is(err, eventbus.ErrPermanent))
	}
	want := "handler not implemented: TestingPolicyEventsHandler.Retried is not implemented, so eventchat.testing.v1.Retried events are dead-lettered"
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestRegistry checks the generated registries and what can be done with an
// EventInfo without the event's Go type: publish, look up, list.
func TestRegistry(t *testing.T) {
	all := append(slices.Clone(testpbv1.TestingEvents), testpbv1.TestingPolicyEvents...)
	if got, want := all.Subjects(), []string{"eventbus.test.ping", "eventbus.test.pong", "eventbus.test.retried", "eventbus.test.dropped"}; !slices.Equal(got, want) {
		t.Errorf("Subjects() = %q, want %q", got, want)
	}
	if got, want := all.Streams(), []string{"EVENTBUS_TEST"}; !slices.Equal(got, want) {
		t.Errorf("Streams() = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		subject string
		name    string
		policy  *eventbus.Policy
	}{
		{testpbv1.PingSubject, "eventchat.testing.v1.Ping", nil},
		{testpbv1.PongSubject, "eventchat.testing.v1.Pong", nil},
		{testpbv1.RetriedSubject, "eventchat.testing.v1.Retried", &testpbv1.RetriedPolicy},
		{testpbv1.DroppedSubject, "eventchat.testing.v1.Dropped", &testpbv1.DroppedPolicy},
	} {
		info, ok := all.Lookup(tc.subject)
		if !ok {
			t.Errorf("Lookup(%q) found nothing", tc.subject)
			continue
		}
		if info.Stream != testpbv1.PingStream || info.Samples != tc.subject || string(info.Name()) != tc.name || info.Policy != tc.policy {
			t.Errorf("Lookup(%q) = %+v (name %s), want stream %s, samples %s, name %s, policy %p",
				tc.subject, info, info.Name(), testpbv1.PingStream, tc.subject, tc.name, tc.policy)
		}
	}
	if _, ok := all.Lookup("eventbus.test.unknown"); ok {
		t.Error("Lookup of an unknown subject found an event")
	}

	// Publish through the registry as a tool would: by subject, from JSON.
	_, js := runServer(t)
	rec := &recorder{}
	r := eventbus.NewRouter(js, eventbus.WithService("registry"))
	testpbv1.SubscribePing(r, rec.handle)
	startRouter(t, r)
	info, _ := all.Lookup(testpbv1.PingSubject)
	msg := info.New()
	if err := eventbus.Decode(eventbus.ContentTypeJSON, []byte(`{"id":"from-json","sent_at":"2024-01-01T10:00:00Z","detail":{"kind":"test"}}`), msg); err != nil {
		t.Fatal(err)
	}
	if _, err := eventbus.Publish(context.Background(), js, info.Event(), msg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return rec.count() == 1 })
	if !proto.Equal(rec.events[0], ping("from-json")) {
		t.Errorf("handled %v, want %v", rec.events[0], ping("from-json"))
	}

	// The registry's Event validates like the typed one.
	bad := info.New()
	if _, err := eventbus.Publish(context.Background(), js, info.Event(), bad); !errors.Is(err, eventbus.ErrInvalid) {
		t.Errorf("publishing an empty Ping through the registry: %v, want ErrInvalid", err)
	}
}

// A registry lists the events of a proto file, so that tools work on every
// event without naming one: here, find an event by subject and decode a
// payload into its message type.
func ExampleRegistry() {
	events := append(slices.Clone(testpbv1.TestingEvents), testpbv1.TestingPolicyEvents...)
	fmt.Println(events.Subjects(), events.Streams())

	info, ok := events.Lookup("eventbus.test.retried")
	if !ok {
		return
	}
	msg := info.New()
	if err := eventbus.Decode(eventbus.ContentTypeJSON, []byte(`{"key": "k-1", "attempt": "2"}`), msg); err != nil {
		fmt.Println(err)
	}
	fmt.Println(info.Name(), "in", info.Stream, "samples in contracts/samples/"+info.Samples)
	fmt.Println("max retries", info.Policy.Retry.MaxRetries, "ordered by", info.Policy.OrderingKey, "valid:", eventbus.Validate(msg) == nil)
	// Output:
	// [eventbus.test.ping eventbus.test.pong eventbus.test.retried eventbus.test.dropped] [EVENTBUS_TEST]
	// eventchat.testing.v1.Retried in EVENTBUS_TEST samples in contracts/samples/eventbus.test.retried
	// max retries 5 ordered by key valid: true
}

func ptr[T any](v T) *T { return &v }

// TestRetryOverride checks that an override replaces the fields it sets
// and keeps the others, and that an override which makes a policy invalid
// is refused when the subscription is made.
func TestRetryOverride(t *testing.T) {
	base := testpbv1.RetriedPolicy.Retry
	got := eventbus.RetryOverride{MaxRetries: ptr(0), MaxHold: ptr(time.Second)}.Apply(base)
	want := base
	want.MaxRetries, want.MaxHold = 0, time.Second
	if got != want {
		t.Errorf("Apply = %+v, want %+v", got, want)
	}
	if !(eventbus.RetryOverride{}).IsZero() || (eventbus.RetryOverride{Multiplier: ptr(2.0)}).IsZero() {
		t.Error("IsZero is wrong")
	}
	if (eventbus.RetryOverride{}).Apply(base) != base {
		t.Error("the empty override changed the policy")
	}

	_, js := runServer(t)
	r := eventbus.NewRouter(js, eventbus.WithService("override"))
	// Retried's max_backoff is 90s: an initial interval of 2m is past it.
	msg := mustPanic(t, func() {
		testpbv1.RegisterTestingPolicyEvents(r, policyHandler{}, eventbus.WithRetryOverride(eventbus.RetryOverride{InitialInterval: ptr(2 * time.Minute)}))
	})
	if !strings.Contains(msg, "MaxInterval (1m30s) must not be less than InitialInterval (2m0s)") {
		t.Errorf("panic = %q, want it to name MaxInterval", msg)
	}
}

// TestWithRetryRejectsInvalid checks that WithRetry refuses a policy that
// fails Retry.Check, and takes the zero Retry as DefaultRetry.
func TestWithRetryRejectsInvalid(t *testing.T) {
	msg := mustPanic(t, func() {
		eventbus.WithRetry(eventbus.Retry{MaxRetries: 1, InitialInterval: time.Millisecond, MaxInterval: time.Second})
	})
	if !strings.Contains(msg, "Multiplier must be at least 1, got 0") {
		t.Errorf("panic = %q, want it to name Multiplier", msg)
	}
	_ = eventbus.WithRetry(eventbus.Retry{})
}

// mustPanic runs f and returns the text of its panic, failing t when f
// does not panic.
func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("did not panic")
		}
		msg = fmt.Sprint(r)
	}()
	f()
	return ""
}

// refusingPolicyHandler fails every policy event for good.
type refusingPolicyHandler struct{}

func (refusingPolicyHandler) Retried(context.Context, *testpbv1.Retried, eventbus.Meta) error {
	return eventbus.Permanent(errors.New("refused"))
}

func (refusingPolicyHandler) Dropped(context.Context, *testpbv1.Dropped, eventbus.Meta) error {
	return eventbus.Permanent(errors.New("refused"))
}

// TestPolicyWithoutDeadLetterDrops checks dead_letter: false: a Dropped
// event that fails for good is terminated and counted as dropped, and one
// whose process died on its last delivery (a MAX_DELIVERIES advisory) is
// acknowledged by the forwarder; neither is stored as a dead letter, while
// a Retried event (dead_letter: true) that fails for good is.
func TestPolicyWithoutDeadLetterDrops(t *testing.T) {
	_, js := runServer(t)
	reg := prometheus.NewRegistry()
	r := eventbus.NewRouter(js, eventbus.WithService("contract"), eventbus.WithMetrics(reg))
	testpbv1.RegisterTestingPolicyEvents(r, refusingPolicyHandler{})
	ctx := context.Background()
	if err := r.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	const durable = "contract-eventbus_test_dropped"
	if _, err := testpbv1.PublishDropped(ctx, js, &testpbv1.Dropped{Reason: "abandoned"}); err != nil {
		t.Fatal(err)
	}
	abandon(t, js, durable, 1)
	startRouter(t, r)

	if _, err := testpbv1.PublishDropped(ctx, js, &testpbv1.Dropped{Reason: "no dead letter"}); err != nil {
		t.Fatal(err)
	}
	if _, err := testpbv1.PublishRetried(ctx, js, &testpbv1.Retried{Key: "k1"}); err != nil {
		t.Fatal(err)
	}
	dlq, err := eventbus.OpenDeadLetters(ctx, js, testpbv1.DroppedStream, "contract")
	if err != nil {
		t.Fatal(err)
	}
	var letters []eventbus.DeadLetter
	eventually(t, 15*time.Second, func() bool {
		letters, err = dlq.List(ctx, 0, 0)
		dropped := counter(t, reg, "messaging_handler_total", map[string]string{"subject": testpbv1.DroppedSubject, "outcome": "dropped"})
		return err == nil && len(letters) >= 1 && dropped == 1
	})
	if len(letters) != 1 || letters[0].Subject != testpbv1.RetriedSubject {
		t.Fatalf("dead letters %+v, want only the Retried event's", letters)
	}
	c, err := js.Consumer(ctx, testpbv1.DroppedStream, durable)
	if err != nil {
		t.Fatal(err)
	}
	advs, err := js.Stream(ctx, testpbv1.DroppedStream+"_ADVISORIES")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() bool {
		info, err := c.Info(ctx)
		if err != nil || info.NumAckPending != 0 || info.NumPending != 0 {
			return false
		}
		a, err := advs.Info(ctx)
		return err == nil && a.State.Msgs == 0 // the forwarder took the advisory
	})
	if n, err := dlq.Count(ctx); err != nil || n != 1 {
		t.Fatalf("%d dead letters (%v), want only the Retried event's", n, err)
	}
}
