package eventbus

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lot keeps the deliveries that wait off-worker: those parked after a
// NotReady answer until their retry is due, and those due and waiting for a
// free worker. A parked delivery holds no worker, so the messages behind it
// flow past it.
type lot struct {
	mu     sync.Mutex
	parked []*delivery   // waiting for their due time
	ready  []*delivery   // due, waiting for a worker
	wake   chan struct{} // tells the keeper that a due time changed
	signal chan struct{} // tells the fetcher that ready is not empty
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
	l.mu.Unlock()
	notify(l.signal)
}

// takeReady removes and returns up to n due deliveries.
func (l *lot) takeReady(n int) []*delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, len(l.ready))
	if n == 0 {
		return nil
	}
	out := append([]*delivery(nil), l.ready[:n]...)
	l.ready = l.ready[n:]
	return out
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
	all := make([]*delivery, 0, len(l.parked)+len(l.ready))
	all = append(append(all, l.parked...), l.ready...)
	l.mu.Unlock()
	for _, d := range all {
		f(d)
	}
}

// drain removes and returns every delivery the lot keeps.
func (l *lot) drain() []*delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	all := append(l.parked, l.ready...)
	l.parked, l.ready = nil, nil
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
	tick := max(s.cfg.ackWait/6, time.Millisecond)
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
