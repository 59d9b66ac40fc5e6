package eventbus

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pollExpiry bounds how long a pull request waits on an idle consumer, and
// so how long a lost pull request can stall the subscription. While
// deliveries are parked the poll is shorter, so a subscription with one
// worker does not keep its only worker reserved for an empty poll while a
// parked delivery is due.
const (
	pollExpiry       = 5 * time.Second
	pollExpiryParked = time.Second
)

// Prefetch is bounded by free workers. A subscription has cfg.concurrency
// slots; a slot is taken by a delivery from the moment it is fetched (or
// taken from the lot) until its worker is done with it or parks it, and by
// a pull request for every message it may still bring. So no delivery ever
// waits in this process for a worker: the only deliveries that wait are
// parked and held ones, and the keeper keeps those alive.

// release gives back n slots.
func (s *subscription) release(n int) {
	if n <= 0 {
		return
	}
	s.slotMu.Lock()
	s.free += n
	s.slotMu.Unlock()
	notify(s.freed)
}

// acquireAll takes every free slot and returns how many.
func (s *subscription) acquireAll() int {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	n := s.free
	s.free = 0
	return n
}

// minBatch is the smallest pull worth sending at once while the consumer
// has a backlog: a quarter of the workers. A smaller one waits up to
// maxHoldBack for more workers to finish.
func (s *subscription) minBatch() int { return max(1, s.cfg.concurrency/4) }

const maxHoldBack = 2 * time.Millisecond

type pollResult struct {
	got int
	err error
}

// fetchLoop hands deliveries to the workers until ctx ends, then closes the
// work channel. Due deliveries from the lot go first; then, while the
// consumer has a backlog, it fetches without waiting as many messages as
// there are free slots; on an idle consumer it keeps one pull request for a
// single message open on a goroutine of its own, so that it stays free to
// hand due deliveries to the other workers.
func (s *subscription) fetchLoop(ctx context.Context) {
	defer close(s.work)
	var (
		polling  bool
		pollDone = make(chan pollResult, 1)
		backlog  = true
		heldBack time.Time // when a small pull was first held back
		holdBack = time.NewTimer(0)
	)
	defer holdBack.Stop()
	defer func() {
		if polling {
			<-pollDone // ctx is done, and so is the poll's
		}
	}()
	for ctx.Err() == nil {
		if s.gate.isOpen() {
			n := s.acquireAll()
			for _, d := range s.lot.takeReady(n) {
				s.work <- d
				n--
			}
			switch {
			case n == 0:
			case polling:
				s.release(n)
			case backlog && n < s.minBatch() && (heldBack.IsZero() || time.Since(heldBack) < maxHoldBack):
				// Let more workers finish, for a moment: many small
				// pulls cost the server more than a few larger ones.
				s.release(n)
				if heldBack.IsZero() {
					heldBack = time.Now()
					holdBack.Reset(maxHoldBack)
				}
			case backlog:
				heldBack = time.Time{}
				got, err := s.fetchNoWait(n)
				s.release(n - got)
				if err != nil {
					s.recover(ctx, err)
					continue
				}
				backlog = got > 0
				continue
			default:
				s.release(n - 1)
				expiry := pollExpiry
				if s.lot.size() > 0 {
					expiry = pollExpiryParked
				}
				polling = true
				go func() {
					pctx, cancel := context.WithTimeout(ctx, expiry)
					defer cancel()
					pollDone <- s.poll(pctx)
				}()
			}
		}
		var opened <-chan struct{}
		if !s.gate.isOpen() {
			opened = s.gate.openCh()
		}
		select {
		case <-ctx.Done():
		case <-s.freed:
		case <-s.lot.signal:
		case <-opened:
		case <-holdBack.C:
		case r := <-pollDone:
			polling = false
			if r.got == 0 {
				s.release(1)
			}
			backlog = r.got > 0
			if r.err != nil {
				s.recover(ctx, r.err)
			}
		}
	}
}

// fetchNoWait fetches up to n messages that the consumer has now and hands
// them to the workers.
func (s *subscription) fetchNoWait(n int) (got int, err error) {
	b, err := s.cons().FetchNoWait(n)
	if err != nil {
		return 0, err
	}
	for m := range b.Messages() {
		s.work <- newDelivery(m, time.Now())
		got++
	}
	return got, b.Error()
}

// poll waits, until ctx ends, for one message and hands it to a worker.
func (s *subscription) poll(ctx context.Context) pollResult {
	b, err := s.cons().Fetch(1, jetstream.FetchContext(ctx))
	if err != nil {
		return pollResult{err: err}
	}
	got := 0
	for m := range b.Messages() {
		s.work <- newDelivery(m, time.Now())
		got++
	}
	err = b.Error()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return pollResult{got: got, err: err}
}

// recover handles a failed pull: the consumer may be gone (deleted by an
// operator, or lost with a stream), so after a pause it creates the
// consumer again.
func (s *subscription) recover(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	s.log.Warn("fetching failed; creating the consumer again", slog.Any("error", err))
	sleep(ctx, time.Second)
	if ctx.Err() != nil {
		return
	}
	c, cerr := s.router.js.CreateOrUpdateConsumer(ctx, s.stream, s.consumerConfig())
	if cerr != nil {
		s.log.Error("cannot create the consumer again", slog.Any("error", cerr))
		return
	}
	s.setCons(c)
}
