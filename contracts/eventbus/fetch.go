package eventbus

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pull requests wait briefly: batchWait for the rest of a batch while the
// consumer has a backlog, idleWait for any message while it has none. A
// pull request is never long-lived, so a parked message due meanwhile waits
// at most that long for its worker, and a pull request that the server
// leaves unserved although messages are pending costs at most that long.
const (
	batchWait = 50 * time.Millisecond
	idleWait  = 200 * time.Millisecond
)

// Prefetch is bounded by free workers. A subscription has cfg.concurrency
// slots; a slot is taken by a delivery from the moment it is fetched (or
// taken from the lot) until its worker is done with it or parks it, and by
// a pull request for every message it may still bring. So no delivery ever
// waits in this process for a worker: the only deliveries that wait are
// parked and held ones, and the keeper keeps those alive.

// release gives back n slots and wakes the fetcher when that makes a pull
// worth sending: the first free slot, or a minimum batch.
func (s *subscription) release(n int) {
	if n <= 0 {
		return
	}
	s.slotMu.Lock()
	old := s.free
	s.free += n
	s.slotMu.Unlock()
	if old == 0 || old < s.minBatch() && old+n >= s.minBatch() {
		notify(s.freed)
	}
}

// giveBack returns n slots the fetcher took and did not use. It wakes
// nobody: the fetcher is the only one waiting for slots.
func (s *subscription) giveBack(n int) {
	if n <= 0 {
		return
	}
	s.slotMu.Lock()
	s.free += n
	s.slotMu.Unlock()
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

// maxPulls is how many pull requests a subscription keeps in flight under
// a backlog, so that the round trip of one overlaps the work on the other's
// messages.
const maxPulls = 2

type pullResult struct {
	n, got int
	err    error
}

// fetchLoop hands deliveries to the workers until ctx ends, then waits for
// its pulls and closes the work channel. Due deliveries from the lot go
// first; then it pulls as many messages as there are free slots, with up to
// maxPulls pulls in flight under a backlog and one otherwise. Under a
// backlog it waits up to maxHoldBack for a minimum batch of free slots, so
// that it sends fewer, larger pull requests.
func (s *subscription) fetchLoop(ctx context.Context) {
	var (
		backlog  = true
		inflight int
		pulled   = make(chan pullResult, maxPulls)
		heldBack time.Time // when a small pull was first held back
		holdBack = time.NewTimer(0)
	)
	defer holdBack.Stop()
	defer close(s.work)
	defer func() {
		for ; inflight > 0; inflight-- {
			<-pulled
		}
	}()
	for ctx.Err() == nil {
		if s.gate.isOpen() {
			n := s.acquireAll()
			for _, d := range s.lot.takeReady(n) {
				s.work <- d
				n--
			}
			limit := 1
			if backlog {
				limit = maxPulls
			}
			switch {
			case n == 0:
			case inflight >= limit:
				s.giveBack(n)
			case backlog && n < s.minBatch() && (heldBack.IsZero() || time.Since(heldBack) < maxHoldBack):
				// Let more workers finish, for a moment: many small
				// pulls cost the server more than a few larger ones.
				s.giveBack(n)
				if heldBack.IsZero() {
					heldBack = time.Now()
					holdBack.Reset(maxHoldBack)
				}
			default:
				heldBack = time.Time{}
				wait := idleWait
				if backlog {
					wait = batchWait
				}
				inflight++
				go func() {
					got, err := s.fetch(n, wait)
					pulled <- pullResult{n: n, got: got, err: err}
				}()
				continue
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
		case r := <-pulled:
			inflight--
			s.giveBack(r.n - r.got)
			backlog = r.got > 0
			if r.err != nil {
				s.recover(ctx, r.err)
			}
		}
	}
}

// fetch pulls up to n messages, waiting at most wait, and hands them to the
// workers. It does not give up on the pull request before the server has
// ended it (with the whole batch, or with its timeout status): a message
// the server sends to a pull request the client has left is lost to this
// process and comes back only after the ack wait. Even shutdown waits for
// the pull, which is short, and its messages are handled.
//
// Known gap: nats.go's Fetch itself leaves a pull one second after its
// expiry when the server has not answered by then. A server that lags by
// more than that (seen on an overloaded machine) can still send messages to
// the left pull; they come back after the ack wait. A long-lived inbox for
// all pulls of a subscription would close this.
func (s *subscription) fetch(n int, wait time.Duration) (got int, err error) {
	b, err := s.cons().Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		return 0, err
	}
	for m := range b.Messages() {
		s.work <- newDelivery(m, time.Now())
		got++
	}
	return got, b.Error()
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
