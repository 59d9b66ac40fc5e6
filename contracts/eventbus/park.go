package eventbus

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// lot keeps the deliveries that wait off-worker: those parked after a
// NotReady answer until their retry is due, and those due and waiting for a
// free worker. A parked delivery holds no worker, so the messages behind it
// flow past it.
type lot struct {
	mu     sync.Mutex
	parked []*delivery   // waiting for their due time
	ready  []*delivery   // due, waiting for a worker
	queued []*delivery   // handed to the workers, not yet started
	wake   chan struct{} // tells the keeper that a due time changed
	signal chan struct{} // tells the fetcher that ready is not empty

	readyLen atomic.Int32 // len(ready), read without the lock
}

func newLot() *lot {
	return &lot{wake: make(chan struct{}, 1), signal: make(chan struct{}, 1)}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// park keeps d until due.
func (l *lot) park(d *delivery, due time.Time) {
	l.mu.Lock()
	d.due = due
	l.parked = append(l.parked, d)
	l.mu.Unlock()
	notify(l.wake)
}

// readyNow makes ds due at once, oldest first.
func (l *lot) readyNow(ds []*delivery) {
	if len(ds) == 0 {
		return
	}
	l.mu.Lock()
	l.ready = append(l.ready, ds...)
	l.readyLen.Store(int32(len(l.ready)))
	l.mu.Unlock()
	notify(l.signal)
}

// hasReady reports whether deliveries are due and wait for a worker.
func (l *lot) hasReady() bool { return l.readyLen.Load() > 0 }

// takeReady removes up to n due deliveries, oldest first, and returns
// them. They stay queued, kept alive with the rest, until a worker starts
// them (started).
func (l *lot) takeReady(n int) []*delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, len(l.ready))
	if n == 0 {
		return nil
	}
	out := append([]*delivery(nil), l.ready[:n]...)
	l.ready = l.ready[n:]
	l.readyLen.Store(int32(len(l.ready)))
	l.queued = append(l.queued, out...)
	return out
}

// started forgets d, which a worker took from the queue.
func (l *lot) started(d *delivery) {
	l.mu.Lock()
	if i := slices.Index(l.queued, d); i >= 0 {
		l.queued = slices.Delete(l.queued, i, i+1)
	}
	l.mu.Unlock()
}

// promote moves the parked deliveries due at now to ready and returns the
// earliest due time left, or the zero time.
func (l *lot) promote(now time.Time) (next time.Time) {
	l.mu.Lock()
	kept := l.parked[:0]
	moved := false
	for _, d := range l.parked {
		if !d.due.After(now) {
			l.ready = append(l.ready, d)
			l.readyLen.Store(int32(len(l.ready)))
			moved = true
			continue
		}
		kept = append(kept, d)
		if next.IsZero() || d.due.Before(next) {
			next = d.due
		}
	}
	clear(l.parked[len(kept):])
	l.parked = kept
	l.mu.Unlock()
	if moved {
		notify(l.signal)
	}
	return next
}

// each calls f for every delivery the lot keeps.
func (l *lot) each(f func(*delivery)) {
	l.mu.Lock()
	all := make([]*delivery, 0, len(l.parked)+len(l.ready)+len(l.queued))
	all = append(append(append(all, l.parked...), l.ready...), l.queued...)
	l.mu.Unlock()
	for _, d := range all {
		f(d)
	}
}

// drain removes and returns every delivery the lot keeps.
func (l *lot) drain() []*delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	all := append(append(l.parked, l.ready...), l.queued...)
	l.parked, l.ready, l.queued = nil, nil, nil
	l.readyLen.Store(0)
	return all
}

// runner is a goroutine that runs handlers: a worker or the probe. cur is
// the delivery it runs, for the keeper.
type runner struct {
	cur atomic.Pointer[delivery]
}

// keep runs until ctx ends. It keeps alive, with in-progress acks, every
// delivery this subscription has and is not done with: parked, held by the
// gate, or in a handler (until the handler's deadline), and it moves parked
// deliveries to ready when they are due. It is the only goroutine that sends
// keepalives, so no wait and no probe can starve them.
func (s *subscription) keep(ctx context.Context) {
	tick := s.keepTick()
	timer := time.NewTimer(0)
	defer timer.Stop()
	nextKeepalive := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.lot.wake:
		}
		now := time.Now()
		if !now.Before(nextKeepalive) {
			s.guardInbox(now)
			s.keepAliveAll(now)
			nextKeepalive = now.Add(tick)
		}
		wakeAt := nextKeepalive
		if due := s.lot.promote(now); !due.IsZero() && due.Before(wakeAt) {
			wakeAt = due
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(time.Until(wakeAt))
	}
}

// keepTick is how often the keeper sends keepalives and guards the inbox.
func (s *subscription) keepTick() time.Duration {
	return max(s.cfg.ackWait/6, time.Millisecond)
}

// inboxWait bounds how long a message waits in the inbox before a worker
// or the keeper takes it: two keeper ticks (see guardInbox) and a half for
// the keeper's own lateness. A delivery's ack-wait clock is taken to have
// started that long before it was taken, so that the runtime's estimate of
// its ack deadline is never later than the server's.
func (s *subscription) inboxWait() time.Duration {
	return 2*s.keepTick() + s.keepTick()/2
}

// guardInbox runs on every keeper tick. Messages the look-ahead brought
// wait in the inbox while every worker is busy, where no keepalive reaches
// them; a few slow handlers would let them expire. So when the messages
// that were in the inbox at the last tick have not all been taken since,
// the keeper takes everything the inbox holds into the lot, where it keeps
// them alive; the fetcher then pulls nothing until the workers have taken
// them (fetchLoop). A message thus waits in the inbox for at most two
// ticks.
//
// inboxMark is the count of inbox reads by which every message in the
// inbox at the last tick has been read: the reads counted then, plus the
// inbox's length, plus one read per reader that may have read and not yet
// counted (an overestimate makes only a needless move).
func (s *subscription) guardInbox(now time.Time) {
	if len(s.inbox) > 0 && s.inboxReads.Load() < s.inboxMark {
		moved := 0
		for len(s.inbox) > 0 {
			var m *nats.Msg
			select {
			case m = <-s.inbox:
			default:
			}
			if m == nil {
				break
			}
			s.inboxReads.Add(1)
			d := s.receive(m)
			if d == nil {
				continue // a status, or a late message, which receive kept
			}
			d.received(now.Add(-s.inboxWait()))
			s.lot.readyNow([]*delivery{d})
			s.release(1)
			moved++
		}
		if moved > 0 {
			s.log.Debug("workers busy: messages moved from the inbox to the lot", slog.Int("messages", moved))
		}
	}
	n := len(s.inbox)
	s.inboxMark = 0
	if n > 0 {
		s.inboxMark = s.inboxReads.Load() + uint64(n+s.cfg.concurrency+1)
	}
}

func (s *subscription) keepAliveAll(now time.Time) {
	aw := s.cfg.ackWait
	keep := func(d *delivery) { d.keepAlive(now, aw) }
	s.lot.each(keep)
	s.gate.each(keep)
	for _, r := range s.runners {
		d := r.cur.Load()
		if d == nil {
			continue
		}
		if until := d.keepUntil.Load(); until != 0 && now.UnixNano() < until {
			keep(d)
		}
	}
}
