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

// handleFunc decodes, validates and handles a message, returning the
// decoded event, if any, and the error.
type handleFunc func(context.Context, jetstream.Msg, *Meta) (proto.Message, error)

// maxReasonLen bounds the reason given to TermWithReason.
const maxReasonLen = 1024

// drainPoll is how long a worker waits for another buffered message once
// the router is shutting down.
const drainPoll = 100 * time.Millisecond

// subscription consumes one subject through one durable consumer.
type subscription struct {
	router  *Router
	cfg     subConfig
	subject string
	stream  string
	handle  handleFunc

	consumer jetstream.Consumer
	gate     *gate
	m        *subMetrics
	log      *slog.Logger
	wg       sync.WaitGroup // workers and handlers of held messages
}

func (s *subscription) consumerConfig() jetstream.ConsumerConfig {
	return s.withReplayFilter(jetstream.ConsumerConfig{ // replay.go
		Durable:       s.cfg.durable,
		Description:   "eventbus subscription of " + s.router.cfg.service + " to " + s.subject,
		FilterSubject: s.subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.ackWait,
		MaxDeliver:    s.cfg.retry.MaxRetries + 1,
		MaxAckPending: s.cfg.maxAckPending,
	})
}

// run consumes until ctx is done, then waits up to the drain timeout for the
// running handlers.
func (s *subscription) run(ctx context.Context) {
	s.m = s.router.metrics.forSubject(s.subject)
	s.log = s.router.log.With(slog.String("subject", s.subject), slog.String("consumer", s.cfg.durable))
	for s.gate.wait(ctx) == nil {
		it, err := s.consumer.Messages(
			jetstream.PullMaxMessages(max(2*s.cfg.concurrency, 128)),
			// Bounds how long a pull request can sit unanswered, and so
			// any pause in fetching, to a few seconds.
			jetstream.PullExpiry(5*time.Second))
		if err == nil {
			err = s.consume(ctx, it)
		}
		if err != nil && ctx.Err() == nil {
			// The consumer may be gone (deleted by an operator, or lost
			// with a stream): create it again before consuming again.
			s.log.Warn("consuming stopped; restarting", slog.Any("error", err))
			sleep(ctx, time.Second)
			if c, cerr := s.router.js.CreateOrUpdateConsumer(ctx, s.stream, s.consumerConfig()); cerr == nil {
				s.consumer = c
			} else {
				s.log.Error("cannot create the consumer again", slog.Any("error", cerr))
			}
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.router.cfg.drainTimeout):
		s.log.Warn("drain timeout: handlers still running", slog.Duration("timeout", s.router.cfg.drainTimeout))
	}
}

// consume handles the messages of it until it is drained, when ctx is done
// or the gate closes, and returns nil; or until consuming fails, and returns
// why. On shutdown it returns without waiting for the running handlers; run
// waits for them.
func (s *subscription) consume(ctx context.Context, it jetstream.MessagesContext) error {
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	// Stop fetching as soon as the gate closes; what is buffered is still
	// handed out, and held.
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
	// Each worker takes its next message from the iterator itself, so a
	// message is handled by the goroutine that received it.
	var workers sync.WaitGroup
	var failure error
	var once sync.Once
	for range s.cfg.concurrency {
		s.wg.Add(1) // run waits for the workers when it drains
		workers.Go(func() {
			defer s.wg.Done()
			for {
				msg, err := it.Next(jetstream.NextContext(ctx))
				if err != nil && ctx.Err() != nil {
					// Shutting down: handle what is still buffered, then
					// stop without waiting for the drain to finish.
					msg, err = it.Next(jetstream.NextMaxWait(drainPoll))
					if err != nil {
						return
					}
				}
				if err != nil {
					if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						once.Do(func() { failure = err })
						it.Stop()
					}
					return
				}
				s.handleMsg(ctx, msg)
			}
		})
	}
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
		return failure
	case <-ctx.Done():
		return nil
	}
}

// handleMsg holds msg while the gate is closed and processes it otherwise.
func (s *subscription) handleMsg(ctx context.Context, msg jetstream.Msg) {
	if s.gate.hold(msg) {
		s.m.held.Inc()
		return
	}
	s.process(ctx, msg, false)
}

// dispatch handles a message that was held, on a goroutine of its own.
func (s *subscription) dispatch(ctx context.Context, msg jetstream.Msg) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.handleMsg(ctx, msg)
	}()
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
		Subject:     s.subject, // also for a replay (replay.go)
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

	var event proto.Message
	lastProgress := start
	for attempt := 1; ; attempt++ {
		event, err = s.call(ctx, msg, &meta)
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
func (s *subscription) call(ctx context.Context, msg jetstream.Msg, meta *Meta) (event proto.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	ctx = context.WithoutCancel(ctx)
	if meta.Traceparent != "" {
		ctx = ContextWithTraceparent(ctx, meta.Traceparent)
	}
	return s.handle(ctx, msg, meta)
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
			s.dispatch(ctx, m)
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
