package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
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

// pullGrace is how long after a pull request's expiry the fetcher still
// counts on the server to answer it. After that its slots are given back;
// should the server still send a message for it, the message is kept all
// the same (see receive).
const pullGrace = time.Second

// One inbox for every pull. A subscription subscribes once, for its whole
// run, to a unique inbox, and sends every pull request (batch = free slots,
// expires = batchWait or idleWait) with a reply subject under it. The
// server's answers come to the workers on one channel: messages, which a
// worker runs at once, and the status that ends a pull request early (408
// with the count it did not send, 409, or 503 when the consumer is gone).
// Nothing the server sends while the inbox is open is lost to the process:
// a message for a pull request that the client has given up on (the server
// lagged, or a status ended the pulls) is still received, kept alive by the
// keeper in the lot, and run when a worker is free; the inbox channel has
// room for several times what the pull requests can bring (inboxCapacity);
// and the inbox is unsubscribed only at shutdown, once every pull request
// has ended or is a second past its expiry.
//
// Prefetch is bounded: by free workers, and a look-ahead. A subscription
// has slots(): cfg.concurrency, one per worker, and lookAhead more, so that
// the next messages are on their way while the workers run the last ones
// (without them, one worker would wait a round trip to the server for
// every message). A slot is taken by a delivery from the moment it is
// received (or taken from the lot) until its worker is done with it or
// parks it, and by a pull request for every message it may still bring
// (reserved). So at most lookAhead messages wait in the inbox for a worker.
// The keeper guards them: should the workers be slow to take them, it
// moves them to the lot and keeps them alive, and the fetcher pulls
// nothing more until the workers have taken what the lot holds
// (guardInbox). The other deliveries that wait are parked, held and late
// ones, and the keeper keeps those alive too.

// lookAhead is how many messages a subscription asks for beyond its free
// workers: enough for one worker to not wait on the round trip to the
// server, and half the workers for many.
func lookAhead(concurrency int) int { return max(16, concurrency/2) }

// slots is how many messages a subscription has, or may be sent, at once,
// not counting parked, held and late ones.
func (s *subscription) slots() int { return s.cfg.concurrency + lookAhead(s.cfg.concurrency) }

// sentPull is a pull request the server may still serve: it asked for n
// messages and ends, at the latest, at until (its expiry plus pullGrace).
type sentPull struct {
	n     int
	until time.Time
}

// inboxCapacity is the size of a subscription's inbox channel: nats.go
// drops what does not fit. What the server sends at once is bounded by the
// reserved slots, the statuses (one per pull request) and the late
// messages; this leaves room for four times the slots.
func inboxCapacity(slots int) int { return 4*slots + 64 }

// openInbox subscribes to the subscription's pull inbox.
func (s *subscription) openInbox() error {
	s.nc = s.router.js.Conn()
	s.nextSubject = apiPrefix(s.router.js.Options()) + "CONSUMER.MSG.NEXT." + s.stream + "." + s.cfg.durable
	s.replyPrefix = s.nc.NewInbox() + "."
	s.inbox = make(chan *nats.Msg, inboxCapacity(s.slots()))
	sub, err := s.nc.ChanSubscribe(s.replyPrefix+"*", s.inbox)
	if err != nil {
		return err
	}
	s.inboxSub = sub
	return nil
}

// apiPrefix returns the JetStream API prefix js sends its requests to.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
}

// release gives back n slots and wakes the fetcher when that makes a pull
// worth sending, the first free slot or a minimum batch, or when the lot
// has deliveries for a free worker.
func (s *subscription) release(n int) {
	if n <= 0 {
		return
	}
	s.slotMu.Lock()
	old := s.free
	s.free += n
	s.slotMu.Unlock()
	if old == 0 || old < s.minBatch() && old+n >= s.minBatch() || s.lot.hasReady() {
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

// unreserve gives back up to n slots reserved by pull requests that the
// server has ended without sending those messages, and wakes the fetcher.
func (s *subscription) unreserve(n int) {
	s.slotMu.Lock()
	n = min(n, s.reserved)
	s.reserved -= n
	s.slotMu.Unlock()
	s.release(n)
	notify(s.freed)
}

func (s *subscription) reservedSlots() int {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	return s.reserved
}

// minBatch is the smallest pull worth sending at once while the consumer
// has a backlog: a quarter of the slots. A smaller one waits up to
// maxHoldBack for more workers to finish.
func (s *subscription) minBatch() int { return max(1, s.slots()/4) }

// idleWorkers is how many workers have nothing to run.
func (s *subscription) idleWorkers() int {
	return max(0, s.cfg.concurrency-int(s.busy.Load())-len(s.work))
}

const maxHoldBack = 2 * time.Millisecond

// fetchLoop hands deliveries to the workers until ctx ends, then waits for
// the pull requests the server may still serve and closes the work channel.
// Due deliveries from the lot go first, to idle workers; while the lot has
// more, it pulls nothing. Then it asks for as many messages as there are
// free slots. Under a backlog it waits up to maxHoldBack for a
// minimum batch of free slots, so that it sends fewer, larger pull
// requests; without one it keeps one pull request waiting at a time.
func (s *subscription) fetchLoop(ctx context.Context) {
	var (
		heldBack time.Time // when a small pull was first held back
		holdBack = time.NewTimer(0)
		expiry   = time.NewTimer(0)
	)
	defer holdBack.Stop()
	defer expiry.Stop()
	defer close(s.work)
	defer s.endPulls()
	for ctx.Err() == nil {
		now := time.Now()
		s.expirePulls(now)
		if s.gate.isOpen() {
			n := s.acquireAll()
			if s.lot.hasReady() {
				for _, d := range s.lot.takeReady(min(n, s.idleWorkers())) {
					s.work <- d
					n--
				}
				if s.lot.hasReady() {
					s.giveBack(n) // the lot first: its deliveries waited longer
					n = 0
				}
			}
			idle := s.idle.Load()
			switch {
			case n == 0:
			case idle && s.reservedSlots() > 0:
				s.giveBack(n) // one pull request at a time without a backlog
			case !idle && n < s.minBatch() && (heldBack.IsZero() || now.Sub(heldBack) < maxHoldBack):
				// Let more workers finish, for a moment: many small
				// pulls cost the server more than a few larger ones.
				s.giveBack(n)
				if heldBack.IsZero() {
					heldBack = now
					holdBack.Reset(maxHoldBack)
				}
			default:
				heldBack = time.Time{}
				wait := batchWait
				if idle {
					wait = idleWait
				}
				if err := s.pull(n, wait, now); err != nil {
					s.giveBack(n)
					s.recover(ctx, err)
				}
				continue
			}
		}
		var opened <-chan struct{}
		if !s.gate.isOpen() {
			opened = s.gate.openCh()
		}
		s.armExpiry(expiry, now)
		select {
		case <-ctx.Done():
		case <-s.freed:
		case <-s.lot.signal:
		case <-opened:
		case <-holdBack.C:
		case <-expiry.C:
		case err := <-s.pullErr:
			s.recover(ctx, err)
		}
	}
}

// pull asks the server for n messages within wait. The slots are reserved
// before the request leaves, so that its answer always finds them.
func (s *subscription) pull(n int, wait time.Duration, now time.Time) error {
	s.slotMu.Lock()
	s.reserved += n
	s.slotMu.Unlock()
	body := strconv.AppendInt(append(s.pullBody[:0], `{"batch":`...), int64(n), 10)
	body = strconv.AppendInt(append(body, `,"expires":`...), wait.Nanoseconds(), 10)
	s.pullBody = append(body, '}')
	// The reply subject carries the batch, for a status that ends the
	// request before it sent anything.
	if err := s.nc.PublishRequest(s.nextSubject, s.replyPrefix+strconv.Itoa(n), s.pullBody); err != nil {
		s.slotMu.Lock()
		s.reserved -= n
		s.slotMu.Unlock()
		return err
	}
	s.pulls = append(s.pulls, sentPull{n: n, until: now.Add(wait + pullGrace)})
	s.pullsLive += n
	return nil
}

// expirePulls forgets the pull requests the server has ended for sure: all
// of them once no slot is reserved, and those whose expiry and grace have
// passed. Slots reserved beyond what the remaining requests can bring are
// given back: they belonged to a request lost with a connection, or one
// the server answers very late (its messages then arrive late, and are
// kept all the same).
func (s *subscription) expirePulls(now time.Time) {
	i := 0
	for i < len(s.pulls) && !now.Before(s.pulls[i].until) {
		s.pullsLive -= s.pulls[i].n
		i++
	}
	s.pulls = s.pulls[i:]
	s.slotMu.Lock()
	lost := s.reserved - s.pullsLive
	if lost > 0 {
		s.reserved = s.pullsLive
	}
	if s.reserved == 0 {
		s.pulls, s.pullsLive = s.pulls[:0], 0
	}
	s.slotMu.Unlock()
	if lost > 0 {
		s.log.Debug("pull requests unanswered after their expiry; slots given back", slog.Int("slots", lost))
		s.release(lost)
	}
}

// armExpiry sets t to fire when the oldest pull request the server may
// still serve expires for good.
func (s *subscription) armExpiry(t *time.Timer, now time.Time) {
	if len(s.pulls) == 0 {
		return
	}
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(max(s.pulls[0].until.Sub(now), 0))
}

// endPulls waits, at shutdown, until the server has ended every pull
// request, while the workers still take what it sends, and then
// unsubscribes the inbox.
func (s *subscription) endPulls() {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		now := time.Now()
		s.expirePulls(now)
		if s.reservedSlots() == 0 {
			break
		}
		s.armExpiry(t, now)
		select {
		case <-s.freed:
		case <-t.C:
		}
	}
	if err := s.inboxSub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("cannot unsubscribe the pull inbox", slog.Any("error", err))
	}
}

// worker runs deliveries, from the fetcher (the lot's, first) and from the
// inbox, until the fetcher closes the work channel; then it takes what is
// left in the inbox.
func (s *subscription) worker(r *runner) {
	for {
		var (
			w  *delivery
			m  *nats.Msg
			ok = true
		)
		select {
		case w, ok = <-s.work:
		default:
			select {
			case w, ok = <-s.work:
			case m = <-s.inbox:
			}
		}
		if !ok {
			s.drainInbox(r)
			return
		}
		s.busy.Add(1)
		if w != nil {
			s.lot.started(w)
			s.execute(r, w, false)
		} else {
			s.inboxReads.Add(1)
			if d := s.receive(m); d != nil {
				s.execute(r, d, false)
			} else {
				s.busy.Add(-1)
				continue
			}
		}
		s.busy.Add(-1)
		s.release(1)
	}
}

// drainInbox runs what the inbox still holds after the last pull request.
func (s *subscription) drainInbox(r *runner) {
	for {
		select {
		case m := <-s.inbox:
			s.inboxReads.Add(1)
			if d := s.receive(m); d != nil {
				s.execute(r, d, false)
				s.release(1)
			}
		default:
			return
		}
	}
}

// receive takes one message from the inbox. A delivery for a reserved slot
// is returned for the worker to run. A late one, which no slot awaits,
// waits in the lot for a free worker, kept alive meanwhile. A status is
// accounted for.
func (s *subscription) receive(m *nats.Msg) *delivery {
	if m.Reply == "" {
		s.status(m)
		return nil
	}
	d := newDelivery(m, s.nc)
	s.slotMu.Lock()
	late := s.reserved == 0
	if !late {
		s.reserved--
	}
	lastOne := !late && s.reserved == 0
	s.slotMu.Unlock()
	if lastOne {
		// Every pull request has ended, the last one filled, which the
		// server reports with no status: wake the fetcher, which keeps
		// one pull request at a time while idle (and endPulls, which
		// waits for this at shutdown).
		notify(s.freed)
	}
	if s.idle.Load() {
		s.idle.Store(false)
	}
	if late {
		d.received(time.Now().Add(-s.inboxWait()))
		s.lot.readyNow([]*delivery{d})
		return nil
	}
	return d
}

// Status headers of the JetStream pull protocol.
const (
	headerStatus      = "Status"
	headerDescription = "Description"
	headerPendingMsgs = "Nats-Pending-Messages"
)

// status accounts for a status message on the inbox.
func (s *subscription) status(m *nats.Msg) {
	code, desc := m.Header.Get(headerStatus), m.Header.Get(headerDescription)
	if code == "100" {
		return // idle heartbeat or flow control: not asked for
	}
	if left := m.Header.Get(headerPendingMsgs); left != "" {
		// The request ended (408 at its expiry, or a 409) with left
		// messages unsent: the consumer has no more for now.
		if n, err := strconv.Atoi(left); err == nil {
			if n > 0 {
				s.idle.Store(true)
			}
			s.unreserve(n)
			return
		}
	}
	switch {
	case code == "409" && strings.EqualFold(desc, "Leadership Change"):
		// Every waiting request is dropped; new ones go to the new leader.
		s.unreserve(math.MaxInt)
	case code == "409" && strings.EqualFold(desc, "Consumer Deleted"):
		s.unreserve(math.MaxInt)
		s.pullFailed(fmt.Errorf("eventbus: consumer deleted: %s %s", code, desc))
	default:
		// The server refused the request as it arrived, so it sent no
		// message for it: 503 (no responders: the consumer or its
		// stream is gone), or a 400, 404 or 409 about the request.
		n, _ := strconv.Atoi(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:])
		s.unreserve(n)
		s.pullFailed(fmt.Errorf("eventbus: pull request refused: %s %s", code, desc))
	}
}

// pullFailed tells the fetcher that pulls fail, so that it creates the
// consumer again.
func (s *subscription) pullFailed(err error) {
	select {
	case s.pullErr <- err:
	default:
	}
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
