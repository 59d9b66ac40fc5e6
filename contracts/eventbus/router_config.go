package eventbus

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A RouterOption configures a Router.
type RouterOption interface {
	applyRouter(*routerConfig)
}

// A SubscribeOption configures one subscription.
type SubscribeOption interface {
	applySubscribe(*subConfig)
}

// An Option configures a Router as a RouterOption, where it is the default of
// every subscription, or one subscription as a SubscribeOption.
type Option interface {
	RouterOption
	SubscribeOption
}

type routerConfig struct {
	service       string
	logger        *slog.Logger
	registerer    prometheus.Registerer
	replicas      int
	deadLetters   bool
	dlqMaxAge     time.Duration
	drainTimeout  time.Duration
	probeInterval time.Duration
	lagInterval   time.Duration
	sub           subConfig
	limits        streamLimits // stream_limits.go
}

type subConfig struct {
	durable       string
	retry         Retry
	concurrency   int
	ackWait       time.Duration
	maxAckPending int
	// noDeadLetter and orderingKey are what the event's contract Policy
	// asks for; see Policy.
	noDeadLetter bool
	orderingKey  string
	maxDeliver   int // 0: Retry.MaxRetries+1+DefaultExtraDeliveries
}

func defaultRouterConfig() routerConfig {
	return routerConfig{
		service:       "eventbus",
		logger:        slog.Default(),
		replicas:      1,
		deadLetters:   true,
		drainTimeout:  15 * time.Second,
		probeInterval: time.Second,
		lagInterval:   5 * time.Second,
		limits:        defaultStreamLimits(),
		sub: subConfig{
			retry:         DefaultRetry,
			concurrency:   64,
			ackWait:       30 * time.Second,
			maxAckPending: 1024,
		},
	}
}

type routerOptionFunc func(*routerConfig)

func (f routerOptionFunc) applyRouter(c *routerConfig) { f(c) }

type subscribeOptionFunc func(*subConfig)

func (f subscribeOptionFunc) applySubscribe(c *subConfig) { f(c) }

// option is both a RouterOption (setting the default of every subscription)
// and a SubscribeOption.
type option func(*subConfig)

func (f option) applyRouter(c *routerConfig) { f(&c.sub) }
func (f option) applySubscribe(c *subConfig) { f(c) }

// WithService names the service that consumes: durable consumer names are
// "<service>-<subject>", with '.' and the other characters that consumer
// names cannot hold as '_' (see DurableName); the router uses the name so
// changed everywhere, so "chat.consumer" and "chat_consumer" are one
// service. Replicas of one service share the durable consumers and so the
// work. The default is "eventbus".
func WithService(name string) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.service = durableName(name) })
}

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.logger = l })
}

// WithMetrics registers the router's Prometheus metrics with reg.
func WithMetrics(reg prometheus.Registerer) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.registerer = reg })
}

// WithReplicas sets the replica count of the streams the router creates;
// use 3 on a NATS cluster. The default is 1.
func WithReplicas(n int) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.replicas = n })
}

// WithoutDeadLetters turns off the advisory stream, the DLQ stream and the
// forwarder. Messages that fail for good then stay only in their stream.
func WithoutDeadLetters() RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.deadLetters = false })
}

// WithDeadLetterMaxAge bounds how long dead letters are kept; zero, the
// default, keeps them until purged.
func WithDeadLetterMaxAge(d time.Duration) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.dlqMaxAge = d })
}

// WithDrainTimeout bounds how long Run waits for in-flight handlers after
// its context is done. The default is 15s.
func WithDrainTimeout(d time.Duration) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.drainTimeout = d })
}

// WithProbeInterval sets the first delay between probes while a subscription
// holds for an Unavailable dependency; it doubles up to Retry.MaxInterval.
// The default is 1s.
func WithProbeInterval(d time.Duration) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.probeInterval = d })
}

// WithRetry sets the retry policy. A message is dead-lettered when its
// handler failed r.MaxRetries+1 times; the runtime counts the failures
// itself (see WithMaxDeliver). The default is DefaultRetry.
// The zero Retry also means DefaultRetry.
//
// WithRetry panics when r is neither the zero Retry nor passes r.Check
// (Multiplier 0, say), as regexp.MustCompile does with a bad pattern: an
// invalid policy is a programming error, and a policy read from
// configuration is checked with Retry.Check where it is loaded.
func WithRetry(r Retry) Option {
	r = r.orDefault()
	if err := r.Check(); err != nil {
		panic(fmt.Sprintf("eventbus: WithRetry: invalid retry policy: %v", err))
	}
	return option(func(c *subConfig) { c.retry = r })
}

// WithConcurrency sets how many handlers of one subscription run at once in
// this process. It also bounds prefetch: the subscription fetches as many
// messages as it has handlers free, plus a look-ahead of
// max(16, concurrency/2), which the runtime keeps alive while they wait
// (see the package documentation). Parked and held messages hold no
// handler. The default is 64.
func WithConcurrency(n int) Option {
	return option(func(c *subConfig) { c.concurrency = n })
}

// WithAckWait sets how long the server waits for an acknowledgement, or an
// in-progress ack, before it redelivers. The runtime sends in-progress acks
// for every message it holds, parks or handles, so the ack wait only runs
// out when this process stops keeping a message (a crash, a lost
// connection, a hung handler). A handler's context ends one ack wait after
// the call starts; the runtime keeps the delivery alive until then, so the
// server redelivers it no sooner than half an ack wait after the context
// ends. A result that comes after the runtime's own estimate of the ack
// deadline is dropped, and the redelivery decides. The default is 30s.
func WithAckWait(d time.Duration) Option {
	return option(func(c *subConfig) { c.ackWait = d })
}

// WithMaxAckPending bounds the messages delivered but not yet acknowledged
// across all replicas of the consumer, held and parked ones included: it
// is how many NotReady messages can wait at once before the consumer stops
// delivering. The default is 1024.
func WithMaxAckPending(n int) Option {
	return option(func(c *subConfig) { c.maxAckPending = n })
}

// WithMaxDeliver sets the consumer's MaxDeliver, the backstop for a message
// whose handler never finishes: it crashes the process, hangs past its
// deadline, or the process restarts on every delivery. On the delivery
// that reaches n the runtime dead-letters the message without calling the
// handler, with a reason that says so. Every server delivery counts against
// it, handler failures and also restarts, drains and crashes, so n must
// leave room above the retry budget: values below Retry.MaxRetries+2 are
// raised to it. The default, 0, means Retry.MaxRetries+1+
// DefaultExtraDeliveries.
func WithMaxDeliver(n int) Option {
	return option(func(c *subConfig) { c.maxDeliver = n })
}

// WithDurable overrides the durable consumer name of one subscription.
func WithDurable(name string) SubscribeOption {
	return subscribeOptionFunc(func(c *subConfig) { c.durable = name })
}
