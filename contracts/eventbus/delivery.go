package eventbus

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// delivery is one delivery of a message to this process, from the moment it
// arrives until the runtime acks, naks, terminates or drops it. It tracks
// the delivery's ack deadline as the server sees it, so that the runtime
// keeps it alive while it waits or runs and never acts on it once the
// server may have redelivered it.
type delivery struct {
	msg  pulledMsg // in the delivery, so a delivery is one allocation
	meta Meta

	// progress is when the server's ack-wait clock last started, as Unix
	// nanoseconds: the arrival (when a worker or the lot took the
	// delivery, see received), or the last in-progress ack sent.
	progress atomic.Int64
	// keepUntil is, while a handler runs, the Unix nanoseconds until which
	// the keeper keeps the delivery alive; zero otherwise.
	keepUntil atomic.Int64

	// Set by the goroutine that owns the delivery; read by nobody else.
	prepared      bool      // metadata read and budget loaded
	failures      int       // handler failures before this delivery (the budget)
	notReadySince time.Time // first NotReady answer of this delivery
	notReadyTries int       // NotReady answers of this delivery so far

	// due is when a parked delivery runs again; the zero time while it is
	// held for an unavailable dependency. Guarded by the lot or the gate
	// that keeps the delivery.
	due time.Time
}

func newDelivery(msg *nats.Msg, nc *nats.Conn) *delivery {
	return &delivery{msg: pulledMsg{msg: msg, nc: nc}}
}

// received starts d's ack-wait clock at now, unless it has started: a
// delivery that comes to its worker from the inbox gets its arrival time
// from the worker's first clock read, less the longest it may have waited
// in the inbox (inboxWait), which saves a clock read per message.
func (d *delivery) received(now time.Time) {
	if d.progress.Load() == 0 {
		d.progress.Store(now.UnixNano())
	}
}

// expiresAt returns when the server may redeliver d at the earliest, as
// far as this process knows: one ack wait after its clock last started.
func (d *delivery) expiresAt(ackWait time.Duration) time.Time {
	return time.Unix(0, d.progress.Load()).Add(ackWait)
}

// touch sends an in-progress ack, which restarts the server's ack-wait
// clock of d.
func (d *delivery) touch(now time.Time) {
	if d.msg.InProgress() == nil {
		d.progress.Store(now.UnixNano())
	}
}

// keepAlive sends an in-progress ack when d's ack-wait clock has run for
// a third of the ack wait or more.
func (d *delivery) keepAlive(now time.Time, ackWait time.Duration) {
	if now.Sub(time.Unix(0, d.progress.Load())) >= ackWait/3 {
		d.touch(now)
	}
}
