package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// handleFunc decodes, validates and handles a message, returning the
// decoded event, if any, and the error.
type handleFunc func(context.Context, jetstream.Msg, *Meta) (proto.Message, error)

// maxReasonLen bounds the reason given to TermWithReason.
const maxReasonLen = 1024

// deadLetterTimeout bounds how long storing one dead letter may take.
const deadLetterTimeout = 10 * time.Second

// DefaultExtraDeliveries is how many deliveries beyond the retry budget the
// consumer allows by default: MaxDeliver is Retry.MaxRetries+1+10. See
// WithMaxDeliver.
const DefaultExtraDeliveries = 10

// subscription consumes one subject through one durable consumer.
type subscription struct {
	router  *Router
	cfg     subConfig
	subject string
	stream  string
	handle  handleFunc

	consMu   sync.Mutex
	consumer jetstream.Consumer // guarded by consMu: the restart path replaces it
	budget   jetstream.KeyValue // guarded by consMu: handler-failure counts, set by Provision

	stopping context.Context // run's context: done when shutting down
	gate     *gate
	lot      *lot
	m        *subMetrics
	log      *slog.Logger

	// The pull inbox and the slots; see fetch.go.
	nc          *nats.Conn
	nextSubject string             // the consumer's pull request subject
	replyPrefix string             // the inbox; a pull's reply subject is under it
	inbox       chan *nats.Msg     // what the server sends to the inbox
	inboxSub    *nats.Subscription // the inbox's subscription
	work        chan *delivery     // deliveries from the lot for the workers; never blocks
	slotMu      sync.Mutex
	free        int           // free slots, guarded by slotMu; slots() in all
	reserved    int           // slots reserved by pull requests, guarded by slotMu
	freed       chan struct{} // a slot was released
	idle        atomic.Bool   // the last pull request expired unfilled: no backlog
	pullErr     chan error    // a status said that pulls fail
	pulls       []sentPull    // the fetcher's: pull requests the server may still serve
	pullsLive   int           // the fetcher's: messages those may still bring
	pullBody    []byte        // the fetcher's: pull request buffer
	busy        atomic.Int32  // workers running a delivery
	inboxReads  atomic.Uint64 // messages taken from the inbox so far
	inboxMark   uint64        // the keeper's: see guardInbox
	runners     []*runner     // the workers, then the probe
	wg          sync.WaitGroup
}

func (s *subscription) cons() jetstream.Consumer {
	s.consMu.Lock()
	defer s.consMu.Unlock()
	return s.consumer
}

func (s *subscription) setCons(c jetstream.Consumer) {
	s.consMu.Lock()
	s.consumer = c
	s.consMu.Unlock()
}

func (s *subscription) budgetKV() jetstream.KeyValue {
	s.consMu.Lock()
	defer s.consMu.Unlock()
	return s.budget
}

func (s *subscription) setBudget(kv jetstream.KeyValue) {
	s.consMu.Lock()
	s.budget = kv
	s.consMu.Unlock()
}

// maxDeliver is the consumer's MaxDeliver: the crash-loop backstop, above
// the retry budget.
func (s *subscription) maxDeliver() int {
	budget := s.cfg.retry.MaxRetries + 1
	if s.cfg.maxDeliver == 0 {
		return budget + DefaultExtraDeliveries
	}
	return max(s.cfg.maxDeliver, budget+1)
}

func (s *subscription) consumerConfig() jetstream.ConsumerConfig {
	return s.withReplayFilter(jetstream.ConsumerConfig{ // replay.go
		Durable:       s.cfg.durable,
		Description:   "eventbus subscription of " + s.router.cfg.service + " to " + s.subject,
		FilterSubject: s.subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.ackWait,
		MaxDeliver:    s.maxDeliver(),
		MaxAckPending: s.cfg.maxAckPending,
	})
}

// expiryMargin is how long before the local estimate of a delivery's ack
// deadline the runtime stops acting on it: it covers the time a Nak or Term
// takes to reach the server.
func (s *subscription) expiryMargin() time.Duration {
	return min(s.cfg.ackWait/10, time.Second)
}

// expired reports whether the server may already have redelivered d.
func (s *subscription) expired(d *delivery, now time.Time) bool {
	return !now.Before(d.expiresAt(s.cfg.ackWait).Add(-s.expiryMargin()))
}

// run consumes, through the pull inbox that Run opened, until ctx is done. Then it stops fetching, lets the workers
// finish what they hold for up to the drain timeout, and gives the parked
// and held deliveries back to the server. Every goroutine it starts has
// ended when it returns, except a handler that outlives the drain timeout.
func (s *subscription) run(ctx context.Context) {
	s.stopping = ctx
	s.m = s.router.metrics.forSubject(s.subject)
	s.log = s.router.log.With(slog.String("subject", s.subject), slog.String("consumer", s.cfg.durable))
	s.lot = newLot()
	s.work = make(chan *delivery, s.cfg.concurrency)
	s.free = s.slots()
	s.freed = make(chan struct{}, 1)
	s.pullErr = make(chan error, 1)
	s.runners = make([]*runner, s.cfg.concurrency+1)
	for i := range s.runners {
		s.runners[i] = &runner{}
	}

	keepCtx, stopKeeping := context.WithCancel(context.Background())
	var keeper sync.WaitGroup
	keeper.Go(func() { s.keep(keepCtx) })

	for _, r := range s.runners[:s.cfg.concurrency] {
		s.wg.Go(func() { s.worker(r) })
	}
	s.fetchLoop(ctx)

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.router.cfg.drainTimeout):
		s.log.Warn("drain timeout: handlers still running", slog.Duration("timeout", s.router.cfg.drainTimeout))
	}
	stopKeeping()
	keeper.Wait()

	// Give what waits back to the server for another replica or the next
	// run. The retry budget is kept apart, so this spends none of it; it
	// spends one server delivery (see WithMaxDeliver). A parked delivery
	// keeps the rest of its delay.
	now := time.Now()
	for _, d := range s.lot.drain() {
		if !s.expired(d, now) {
			_ = d.msg.NakWithDelay(max(d.due.Sub(now), 0))
		}
	}
	for _, d := range s.gate.open() {
		s.m.held.Dec()
		if !s.expired(d, now) {
			_ = d.msg.Nak()
		}
	}
}

// prepare reads d's metadata and, on a redelivery, its handler failures so
// far. It reports false when d is done with: dead-lettered because the
// delivery backstop or the retry budget is spent, or unreadable.
func (s *subscription) prepare(d *delivery) bool {
	var md jetstream.MsgMetadata
	if err := d.msg.metadata(&md); err != nil {
		s.log.Error("not a JetStream message", slog.Any("error", err))
		return false
	}
	d.meta = Meta{
		Subject:     s.subject, // also for a replay (replay.go)
		Stream:      md.Stream,
		Consumer:    md.Consumer,
		StreamSeq:   md.Sequence.Stream,
		Delivery:    md.NumDelivered,
		MaxDeliver:  s.maxDeliver(),
		Attempt:     1,
		MaxAttempts: s.cfg.retry.MaxRetries + 1,
		Published:   md.Timestamp,
		MsgID:       d.msg.Headers().Get(jetstream.MsgIDHeader),
		Traceparent: d.msg.Headers().Get(HeaderTraceparent),
		Header:      d.msg.Headers(),
	}
	d.prepared = true
	if md.NumDelivered == 1 {
		return true
	}
	s.m.redelivered.Inc()
	if n, err := s.loadFailures(d); err != nil {
		s.log.Warn("cannot read the failure count; counting from here",
			slog.Uint64("stream_seq", d.meta.StreamSeq), slog.Any("error", err))
	} else {
		d.failures = n
		d.meta.Attempt = n + 1
	}
	switch {
	case md.NumDelivered >= uint64(s.maxDeliver()):
		s.deadLetter(d, time.Now(), deadLetterMaxDeliveries, nil, fmt.Sprintf(
			"crash loop or delivery backstop: delivered %d times (MaxDeliver) with %d handler failures recorded; "+
				"the handler did not finish (process crash, hang, or restart) on the earlier deliveries",
			md.NumDelivered, d.failures), 0)
		return false
	case d.failures > s.cfg.retry.MaxRetries:
		// The budget was spent on an earlier delivery that could not
		// store its dead letter.
		s.deadLetter(d, time.Now(), deadLetterTerminated, nil, fmt.Sprintf(
			"retries exhausted after %d handler failures", d.failures), 0)
		return false
	}
	return true
}

// execute runs one delivery on r and settles its outcome. When probing, an
// Unavailable result is not held but reported by returning true.
func (s *subscription) execute(r *runner, d *delivery, probing bool) (unavailable bool) {
	start := time.Now()
	d.received(start.Add(-s.inboxWait())) // it may have waited in the inbox
	if !d.prepared {
		if !s.prepare(d) {
			return false
		}
		if d.meta.Delivery > 1 {
			start = time.Now() // after reading the failure count
		}
	}
	if !probing && s.gate.hold(d) {
		s.m.held.Inc()
		return false
	}
	s.m.inFlight.Inc()
	d.keepUntil.Store(start.Add(s.cfg.ackWait).UnixNano())
	r.cur.Store(d)
	event, err := s.call(d, start)
	r.cur.Store(nil)
	d.keepUntil.Store(0)
	s.m.inFlight.Dec()
	now := time.Now()

	if err == nil {
		// Even after the ack wait, an ack is right: the message is
		// applied, and the redelivery, if any, is idempotent.
		_ = d.msg.Ack()
		s.forgetFailures(d)
		s.record(outcomeAck, now.Sub(start), d, event, nil)
		return false
	}
	if s.expired(d, now) {
		// The server may have redelivered the message: whatever this
		// delivery says now, the redelivery decides.
		s.finish(outcomeStale, start, d, event, err)
		return false
	}
	switch {
	case errors.Is(err, ErrPermanent):
		s.deadLetter(d, start, deadLetterTerminated, event, err.Error(), 0)
	case errors.Is(err, ErrUnavailable):
		if probing {
			return true
		}
		if s.gate.close(err) {
			s.log.Warn("dependency unavailable: holding messages and probing", slog.Any("error", err))
			s.wg.Go(s.probe)
		}
		if s.gate.hold(d) {
			s.m.held.Inc()
		} else {
			s.lot.readyNow([]*delivery{d}) // the gate opened meanwhile
		}
		s.finish(outcomeHold, start, d, event, err)
	case errors.Is(err, ErrNotReady) && d.heldFor(now) < s.cfg.retry.MaxHold:
		if d.notReadySince.IsZero() {
			d.notReadySince = start
		}
		d.notReadyTries++
		s.lot.park(d, now.Add(s.cfg.retry.Backoff(d.notReadyTries)))
		s.m.handled[outcomeWait].Inc()
	default:
		s.fail(d, start, event, err)
	}
	return false
}

// heldFor returns how long d has been answered NotReady.
func (d *delivery) heldFor(now time.Time) time.Duration {
	if d.notReadySince.IsZero() {
		return 0
	}
	return now.Sub(d.notReadySince)
}

// fail counts a handler failure against the retry budget, and retries with
// backoff or, once the budget is spent, dead-letters.
func (s *subscription) fail(d *delivery, start time.Time, event proto.Message, err error) {
	n := d.failures + 1
	if n > s.cfg.retry.MaxRetries {
		s.deadLetter(d, start, deadLetterTerminated, event,
			fmt.Sprintf("retries exhausted after %d handler failures: %v", n, err), n)
		return
	}
	if serr := s.storeFailures(d, n); serr != nil {
		s.log.Warn("cannot record a handler failure; it will not count",
			slog.Uint64("stream_seq", d.meta.StreamSeq), slog.Any("error", serr))
	} else {
		d.failures = n
	}
	_ = d.msg.NakWithDelay(s.cfg.retry.Backoff(n))
	s.finish(outcomeRetry, start, d, event, err)
}

// storesDeadLetters reports whether a message this subscription gives up on
// is stored in the dead-letter queue: the router keeps dead letters and the
// event's contract Policy does not turn them off (DeadLetter false).
func (s *subscription) storesDeadLetters() bool {
	return s.router.cfg.deadLetters && !s.cfg.noDeadLetter
}

// deadLetter stores d's message in the dead-letter queue and waits for the
// store, then terminates it. Without dead letters (WithoutDeadLetters, or a
// contract Policy with DeadLetter false) it only terminates it, outcome
// "dropped". A delivery the server may already have redelivered is left
// alone (outcome "stale"). When the store fails, the message is not
// given up: it is retried later, and failures, when above the recorded
// count, is recorded so that the next delivery dead-letters without calling
// the handler again.
func (s *subscription) deadLetter(d *delivery, start time.Time, kind string, event proto.Message, reason string, failures int) {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	now := time.Now()
	if s.expired(d, now) {
		// The server may have delivered it again: a Term now could end
		// a delivery that succeeds. The redelivery decides.
		s.finish(outcomeStale, start, d, event, errors.New(reason))
		return
	}
	if !s.storesDeadLetters() {
		_ = d.msg.TermWithReason(reason)
		s.forgetFailures(d)
		s.finish(outcomeDropped, start, d, event, errors.New(reason))
		return
	}
	d.touch(now) // a whole ack wait for the store and the Term
	ctx, cancel := context.WithTimeout(context.Background(), min(deadLetterTimeout, s.cfg.ackWait-s.expiryMargin()))
	_, err := s.router.storeDeadLetter(ctx, deadLetterRecord{
		Subject:    d.meta.Subject,
		Stream:     d.meta.Stream,
		StreamSeq:  d.meta.StreamSeq,
		Deliveries: d.meta.Delivery,
		Consumer:   d.meta.Consumer,
		Kind:       kind,
		Reason:     reason,
		Header:     d.msg.Headers(),
		Data:       d.msg.Data(),
	})
	cancel()
	if err != nil {
		s.log.Error("cannot store a dead letter; the message is retried later",
			slog.Uint64("stream_seq", d.meta.StreamSeq), slog.Any("error", err))
		if failures > d.failures && s.storeFailures(d, failures) == nil {
			d.failures = failures
		}
		if !s.expired(d, time.Now()) {
			_ = d.msg.NakWithDelay(s.cfg.retry.MaxInterval)
		}
		s.finish(outcomeRetry, start, d, event, err)
		return
	}
	_ = d.msg.TermWithReason(reason)
	s.forgetFailures(d)
	s.finish(outcomeDeadLetter, start, d, event, errors.New(reason))
}

// call runs the handler, turning a panic into a retryable error. The
// handler's context carries the message's traceparent; it is not cancelled
// by shutdown, so that draining lets it finish, and it ends one ack wait
// after the call starts. Until then the keeper keeps the delivery alive.
func (s *subscription) call(d *delivery, start time.Time) (event proto.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	ctx := newHandlerContext(context.Background(), start.Add(s.cfg.ackWait), d.meta.Traceparent)
	defer ctx.release()
	return s.handle(ctx, &d.msg, &d.meta)
}

// probe runs while the gate is closed: it probes the dependency with one
// held delivery at a time, backing off, until a probe gets any answer other
// than Unavailable. Then it opens the gate and hands the held deliveries
// back to the workers. The keeper keeps them alive meanwhile, so a slow
// probe starves nothing; the probe's handler call is bounded like any
// other. Shutdown ends the probing; run gives the held deliveries back.
func (s *subscription) probe() {
	delay := s.router.cfg.probeInterval
	probe := s.runners[len(s.runners)-1]
	for {
		sleep(s.stopping, delay)
		if s.stopping.Err() != nil {
			return
		}
		if d := s.gate.pop(); d != nil {
			s.m.held.Dec()
			if s.execute(probe, d, true) {
				s.gate.pushFront(d)
				s.m.held.Inc()
				delay = min(2*delay, max(s.cfg.retry.MaxInterval, s.router.cfg.probeInterval))
				continue
			}
		}
		held := s.gate.open()
		s.log.Info("dependency available again: resuming", slog.Int("held", len(held)))
		s.m.held.Sub(float64(len(held)))
		s.lot.readyNow(held)
		return
	}
}

// finish records one settled delivery in metrics and the log.
func (s *subscription) finish(outcome string, start time.Time, d *delivery, event proto.Message, err error) {
	s.record(outcome, time.Since(start), d, event, err)
}

// record records one delivery settled after dur in metrics and the log.
func (s *subscription) record(outcome string, dur time.Duration, d *delivery, event proto.Message, err error) {
	s.m.handled[outcome].Inc()
	s.m.duration[outcome].Observe(dur.Seconds())
	level := slog.LevelInfo
	if err != nil {
		s.m.errors[outcome].Inc()
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs,
		slog.String("outcome", outcome),
		slog.Uint64("stream_seq", d.meta.StreamSeq),
		slog.Uint64("delivery", d.meta.Delivery),
		slog.Int("attempt", d.meta.Attempt),
		slog.Duration("duration", dur))
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
