package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// ErrRouterRunning is returned by Run on a router that already runs, and
// Subscribe panics with it once the router runs.
var ErrRouterRunning = errors.New("eventbus: router already running")

// A Router runs the subscriptions of one service: it provisions their
// streams, durable consumers and dead-letter plumbing, consumes, and drains
// on shutdown. Register handlers with the generated SubscribeX functions
// before calling Run.
type Router struct {
	js      jetstream.JetStream
	cfg     routerConfig
	log     *slog.Logger
	metrics *metrics

	mu          sync.Mutex
	subs        []*subscription
	running     bool
	provisioned bool
}

// NewRouter returns a router that consumes through js.
func NewRouter(js jetstream.JetStream, opts ...RouterOption) *Router {
	cfg := defaultRouterConfig()
	for _, o := range opts {
		o.applyRouter(&cfg)
	}
	reg := cfg.registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &Router{
		js:      js,
		cfg:     cfg,
		log:     cfg.logger.With(slog.String("service", cfg.service)),
		metrics: newMetrics(reg),
	}
}

// Subscribe registers h for ev on r. Generated SubscribeX functions call it.
// It panics when r already runs or when ev's subject is registered twice.
func Subscribe[T proto.Message](r *Router, ev Event[T], h Handler[T], opts ...SubscribeOption) {
	cfg := r.cfg.sub
	for _, o := range opts {
		o.applySubscribe(&cfg)
	}
	if cfg.durable == "" {
		cfg.durable = durableName(r.cfg.service + "-" + ev.Subject)
	}
	s := &subscription{
		router:  r,
		cfg:     cfg,
		subject: ev.Subject,
		stream:  ev.Stream,
		handle:  typedHandler(ev, h),
		gate:    newGate(),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		panic(ErrRouterRunning)
	}
	for _, o := range r.subs {
		if o.subject == ev.Subject {
			panic(fmt.Sprintf("eventbus: subject %s subscribed twice", ev.Subject))
		}
	}
	r.subs = append(r.subs, s)
}

// typedHandler turns a typed handler into one that decodes, validates and
// handles a message. Decoding and validation errors are permanent.
func typedHandler[T proto.Message](ev Event[T], h Handler[T]) handleFunc {
	return func(ctx context.Context, m jetstream.Msg, meta *Meta) (proto.Message, error) {
		event := ev.New()
		if err := Decode(m.Headers().Get(HeaderContentType), m.Data(), event); err != nil {
			return nil, err
		}
		if err := Validate(event); err != nil {
			return event, err
		}
		return event, h(ctx, event, *meta)
	}
}

// Run provisions the streams, consumers and dead-letter plumbing of every
// subscription and consumes until ctx is done. Then it stops fetching, waits
// up to the drain timeout for in-flight handlers and returns nil. It returns
// an error only when provisioning fails or the pull inboxes cannot be
// subscribed to (the connection is closed).
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return ErrRouterRunning
	}
	r.running = true
	subs := append([]*subscription(nil), r.subs...)
	r.mu.Unlock()
	if len(subs) == 0 {
		return errors.New("eventbus: no subscriptions registered")
	}
	if err := r.provisionRetrying(ctx); err != nil {
		return err
	}
	for i, s := range subs {
		if err := s.openInbox(); err != nil {
			for _, o := range subs[:i] {
				_ = o.inboxSub.Unsubscribe()
			}
			return fmt.Errorf("eventbus: pull inbox of %s: %w", s.subject, err)
		}
	}
	r.mu.Lock()
	r.provisioned = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.provisioned = false
		r.mu.Unlock()
	}()
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Go(func() { s.run(ctx) })
	}
	if r.cfg.deadLetters {
		for _, f := range r.forwarders(subs) {
			wg.Go(func() { f.run(ctx) })
		}
	}
	wg.Go(func() { r.pollLag(ctx, subs) })
	r.log.Info("eventbus router running", slog.Int("subscriptions", len(subs)))
	wg.Wait()
	r.log.Info("eventbus router stopped")
	return nil
}

// provisionTimeout bounds how long Run retries provisioning, for example
// while a new NATS cluster elects its leaders or a peer is still offline.
const provisionTimeout = time.Minute

// provisionRetrying provisions, retrying with backoff for up to
// provisionTimeout.
func (r *Router) provisionRetrying(ctx context.Context) error {
	deadline := time.Now().Add(provisionTimeout)
	delay := 250 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.Provision(pctx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().Add(delay).After(deadline) {
			return err
		}
		r.log.Warn("provisioning failed; retrying", slog.Any("error", err), slog.Duration("in", delay))
		sleep(ctx, delay)
		delay = min(2*delay, 5*time.Second)
	}
}

// Provision creates or updates, idempotently, the streams, durable consumers
// and dead-letter plumbing of every subscription. Run calls it; tools call
// it to set up before anything runs.
func (r *Router) Provision(ctx context.Context) error {
	r.mu.Lock()
	subs := append([]*subscription(nil), r.subs...)
	r.mu.Unlock()
	byStream := map[string][]string{}
	var streams []string
	for _, s := range subs {
		if _, ok := byStream[s.stream]; !ok {
			streams = append(streams, s.stream)
		}
		byStream[s.stream] = append(byStream[s.stream], s.subject)
	}
	for _, name := range streams {
		if err := r.provisionStreams(ctx, name, byStream[name]); err != nil {
			return err
		}
	}
	budgets := map[string]jetstream.KeyValue{}
	for _, name := range streams {
		kv, err := ensureBudget(ctx, r.js, name, r.cfg.replicas)
		if err != nil {
			return err
		}
		budgets[name] = kv
	}
	for _, s := range subs {
		c, err := r.js.CreateOrUpdateConsumer(ctx, s.stream, s.consumerConfig())
		if err != nil {
			return fmt.Errorf("eventbus: consumer %s on stream %s: %w", s.cfg.durable, s.stream, err)
		}
		s.setCons(c)
		s.setBudget(budgets[s.stream])
	}
	return nil
}

// Ready reports why the router cannot make progress: it is not running, or
// a subscription holds because its dependency is unavailable. Nil means
// ready; serve it as /readyz.
func (r *Router) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.provisioned {
		return errors.New("eventbus: router not running")
	}
	if st := r.js.Conn().Status(); st != nats.CONNECTED {
		return fmt.Errorf("eventbus: NATS connection %s", strings.ToLower(st.String()))
	}
	for _, s := range r.subs {
		if err := s.gate.reason(); err != nil {
			return fmt.Errorf("eventbus: %s holds: %w", s.subject, err)
		}
	}
	return nil
}

// pollLag publishes each consumer's pending count as the lag gauge.
func (r *Router) pollLag(ctx context.Context, subs []*subscription) {
	t := time.NewTicker(r.cfg.lagInterval)
	defer t.Stop()
	for {
		for _, s := range subs {
			c := s.cons()
			if c == nil {
				continue
			}
			info, err := c.Info(ctx)
			if err != nil {
				continue
			}
			r.metrics.lag.WithLabelValues(s.subject).Set(float64(info.NumPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// durableName makes s a valid consumer name: JetStream rejects '.', '*',
// '>', path separators and white space in names.
func durableName(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', '/', '\\', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}
