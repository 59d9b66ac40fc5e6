package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// decodeFunc decodes and validates a message and returns the call of the
// typed handler on it.
type decodeFunc func(jetstream.Msg, Meta) (proto.Message, func(context.Context) error, error)

// maxReasonLen bounds the reason given to TermWithReason.
const maxReasonLen = 1024

// subscription consumes one subject through one durable consumer.
type subscription struct {
	router  *Router
	cfg     subConfig
	subject string
	stream  string
	handle  decodeFunc

	consumer jetstream.Consumer
	gate     *gate
	m        *subMetrics
	log      *slog.Logger
	work     chan jetstream.Msg // to the workers
	quit     chan struct{}      // closed when the workers are to stop
	wg       sync.WaitGroup     // dispatched messages not yet done
}

func (s *subscription) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       s.cfg.durable,
		Description:   "eventbus subscription of " + s.router.cfg.service + " to " + s.subject,
		FilterSubject: s.subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.ackWait,
		MaxDeliver:    s.cfg.retry.MaxRetries + 1,
		MaxAckPending: s.cfg.maxAckPending,
	}
}

// run consumes until ctx is done, then waits up to the drain timeout for the
// running handlers.
func (s *subscription) run(ctx context.Context) {
	s.m = s.router.metrics.forSubject(s.subject)
	s.log = s.router.log.With(slog.String("subject", s.subject), slog.String("consumer", s.cfg.durable))
	s.work = make(chan jetstream.Msg)
	s.quit = make(chan struct{})
	defer close(s.quit)
	for range s.cfg.concurrency {
		go s.worker(ctx)
	}
	for s.gate.wait(ctx) == nil {
		it, err := s.consumer.Messages(jetstream.PullMaxMessages(2 * s.cfg.concurrency))
		if err != nil {
			s.log.Error("cannot start consuming; retrying", slog.Any("error", err))
			sleep(ctx, time.Second)
			continue
		}
		s.consume(ctx, it)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.router.cfg.drainTimeout):
		s.log.Warn("drain timeout: handlers still running", slog.Duration("timeout", s.router.cfg.drainTimeout))
	}
}

// consume dispatches the messages of it until it is drained: when ctx is done
// or when the gate closes.
func (s *subscription) consume(ctx context.Context, it jetstream.MessagesContext) {
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	// Stop fetching as soon as the gate closes; what is buffered is still
	// dispatched, and held.
	stopOnClose := make(chan struct{})
	defer close(stopOnClose)
	closing := s.gate.closing()
	go func() {
		select {
		case <-stopOnClose:
		case <-closing:
			it.Drain()
		}
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				s.log.Warn("consuming stopped; restarting", slog.Any("error", err))
				it.Stop()
				sleep(ctx, 100*time.Millisecond)
			}
			return
		}
		s.dispatch(msg)
	}
}

// dispatch hands msg to the next free worker. Once the workers have
// stopped, msg goes back to the server.
func (s *subscription) dispatch(msg jetstream.Msg) {
	s.wg.Add(1)
	select {
	case s.work <- msg:
	case <-s.quit:
		_ = msg.Nak()
		s.wg.Done()
	}
}

// worker handles dispatched messages until the subscription stops. Workers
// live as long as the subscription, so their stacks stay grown.
func (s *subscription) worker(ctx context.Context) {
	for {
		select {
		case msg := <-s.work:
			if s.gate.hold(msg) {
				s.m.held.Inc()
			} else {
				s.process(ctx, msg, false)
			}
			s.wg.Done()
		case <-s.quit:
			return
		}
	}
}

// process handles one delivery of msg. When probing, an Unavailable result
// is not held but reported by returning true.
func (s *subscription) process(ctx context.Context, msg jetstream.Msg, probing bool) (unavailable bool) {
	start := time.Now()
	md, err := msg.Metadata()
	if err != nil {
		s.log.Error("not a JetStream message", slog.Any("error", err))
		return false
	}
	meta := Meta{
		Subject:     msg.Subject(),
		Stream:      md.Stream,
		Consumer:    md.Consumer,
		StreamSeq:   md.Sequence.Stream,
		Delivery:    md.NumDelivered,
		MaxDeliver:  s.cfg.retry.MaxRetries + 1,
		Published:   md.Timestamp,
		MsgID:       msg.Headers().Get(jetstream.MsgIDHeader),
		Traceparent: msg.Headers().Get(HeaderTraceparent),
		Header:      msg.Headers(),
	}
	if md.NumDelivered > 1 && !probing {
		s.m.redelivered.Inc()
	}
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()

	event, call, err := s.handle(msg, meta)
	lastProgress := start
	for attempt := 1; err == nil; attempt++ {
		err = s.call(ctx, meta, call)
		if !errors.Is(err, ErrNotReady) || errors.Is(err, ErrPermanent) || time.Since(start) >= s.cfg.retry.MaxHold {
			break
		}
		// Too early: retry in place, keeping the delivery alive.
		if time.Since(lastProgress) >= s.cfg.ackWait/3 {
			_ = msg.InProgress()
			lastProgress = time.Now()
		}
		if !s.wait(ctx, msg, s.cfg.retry.Backoff(attempt)) {
			_ = msg.Nak()
			s.finish(ctx, outcomeRetry, start, meta, event, err)
			return false
		}
		err = nil
	}
	switch {
	case err == nil:
		_ = msg.Ack()
		s.finish(ctx, outcomeAck, start, meta, event, nil)
	case errors.Is(err, ErrPermanent):
		s.terminate(msg, err.Error())
		s.finish(ctx, outcomeDeadLetter, start, meta, event, err)
	case errors.Is(err, ErrUnavailable):
		if probing {
			return true
		}
		if s.gate.close(err) {
			s.log.Warn("dependency unavailable: holding messages and probing", slog.Any("error", err))
			go s.holdLoop(ctx)
		}
		if s.gate.hold(msg) {
			s.m.held.Inc()
		} else {
			// The gate opened meanwhile: let the server redeliver at once.
			_ = msg.NakWithDelay(0)
		}
		s.finish(ctx, outcomeHold, start, meta, event, err)
	case md.NumDelivered >= uint64(meta.MaxDeliver):
		s.terminate(msg, fmt.Sprintf("retries exhausted after %d deliveries: %v", md.NumDelivered, err))
		s.finish(ctx, outcomeDeadLetter, start, meta, event, err)
	default:
		_ = msg.NakWithDelay(s.cfg.retry.Backoff(int(md.NumDelivered)))
		s.finish(ctx, outcomeRetry, start, meta, event, err)
	}
	return false
}

// call runs the handler, turning a panic into a retryable error. The
// handler's context carries the message's traceparent and is not cancelled
// by shutdown, so that draining lets it finish; handlers bound their own
// calls (the ack wait bounds them all).
func (s *subscription) call(ctx context.Context, meta Meta, call func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return call(ContextWithTraceparent(context.WithoutCancel(ctx), meta.Traceparent))
}

func (s *subscription) terminate(msg jetstream.Msg, reason string) {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	_ = msg.TermWithReason(reason)
}

// wait sleeps for d while telling the server that msg is in progress, and
// reports false when ctx ends first.
func (s *subscription) wait(ctx context.Context, msg jetstream.Msg, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	progress := time.NewTicker(s.cfg.ackWait / 3)
	defer progress.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return true
		case <-progress.C:
			_ = msg.InProgress()
		}
	}
}

// holdLoop runs while the gate is closed: it keeps the held messages alive
// and probes the dependency with one of them, backing off, until a probe
// gets any answer other than Unavailable. Then it opens the gate and hands
// the held messages back to the workers.
func (s *subscription) holdLoop(ctx context.Context) {
	progress := time.NewTicker(s.cfg.ackWait / 3)
	defer progress.Stop()
	delay := s.router.cfg.probeInterval
	probe := time.NewTimer(delay)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			// Shutting down: give the held messages back to the server
			// for another replica.
			for _, m := range s.gate.open() {
				_ = m.Nak()
				s.m.held.Dec()
			}
			return
		case <-progress.C:
			s.gate.each(func(m jetstream.Msg) { _ = m.InProgress() })
			continue
		case <-probe.C:
		}
		m := s.gate.pop()
		if m != nil {
			s.m.held.Dec()
			if s.process(ctx, m, true) {
				s.gate.pushFront(m)
				s.m.held.Inc()
				delay = min(2*delay, max(s.cfg.retry.MaxInterval, s.router.cfg.probeInterval))
				probe.Reset(delay)
				continue
			}
		}
		held := s.gate.open()
		s.log.Info("dependency available again: resuming", slog.Int("held", len(held)))
		for _, m := range held {
			s.m.held.Dec()
			s.dispatch(m)
		}
		return
	}
}

// finish records one handled delivery in metrics and the log.
func (s *subscription) finish(ctx context.Context, outcome string, start time.Time, meta Meta, event proto.Message, err error) {
	d := time.Since(start)
	s.m.handled[outcome].Inc()
	s.m.duration[outcome].Observe(d.Seconds())
	level := slog.LevelInfo
	if err != nil {
		s.m.errors[outcome].Inc()
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs,
		slog.String("outcome", outcome),
		slog.Uint64("stream_seq", meta.StreamSeq),
		slog.Uint64("attempt", meta.Delivery),
		slog.Duration("duration", d))
	if lv, ok := event.(slog.LogValuer); ok {
		attrs = append(attrs, slog.Any("event", lv))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	s.log.LogAttrs(ctx, level, "event", attrs...)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
