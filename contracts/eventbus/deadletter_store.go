package eventbus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Kinds of dead letter, the "advisory" label of messaging_dead_letters_total.
const (
	deadLetterTerminated    = "terminated"     // the handler failed for good
	deadLetterMaxDeliveries = "max_deliveries" // the server's delivery backstop
)

// deadLetterRecord is one dead letter to store: where the original lives,
// why it died, and the original's headers and payload.
type deadLetterRecord struct {
	Subject    string // the original subject
	Stream     string // the original stream
	StreamSeq  uint64 // the original's sequence in Stream
	Deliveries uint64 // deliveries made before giving up
	Consumer   string // the durable consumer that gave up
	Kind       string // deadLetterTerminated or deadLetterMaxDeliveries
	Reason     string
	Header     nats.Header // the original headers
	Data       []byte      // the original payload
}

// deadLetterID is the Nats-Msg-Id of a dead letter: the subscription that
// stores it before terminating and the forwarder that stores it after an
// advisory use the same id, so the DLQ keeps it once.
func deadLetterID(stream string, seq uint64, consumer string) string {
	return stream + ":" + strconv.FormatUint(seq, 10) + ":" + consumer
}

// storeDeadLetter publishes rec to its dead-letter subject and waits for the
// DLQ stream to store it. It reports whether the DLQ already held it.
func (r *Router) storeDeadLetter(ctx context.Context, rec deadLetterRecord) (duplicate bool, err error) {
	h := make(nats.Header, len(rec.Header)+9)
	for k, v := range rec.Header {
		if k == jetstream.MsgIDHeader || strings.HasPrefix(k, "Nats-Expected") {
			continue
		}
		h[k] = v
	}
	h.Set(HeaderDLQSubject, rec.Subject)
	h.Set(HeaderDLQStream, rec.Stream)
	h.Set(HeaderDLQSequence, strconv.FormatUint(rec.StreamSeq, 10))
	h.Set(HeaderDLQDeliveries, strconv.FormatUint(rec.Deliveries, 10))
	h.Set(HeaderDLQConsumer, rec.Consumer)
	h.Set(HeaderDLQReason, rec.Reason)
	h.Set(HeaderDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	h.Set(HeaderDLQMsgID, rec.Header.Get(jetstream.MsgIDHeader))
	h.Set(jetstream.MsgIDHeader, deadLetterID(rec.Stream, rec.StreamSeq, rec.Consumer))
	ack, err := r.js.PublishMsg(ctx, &nats.Msg{Subject: DLQSubject(rec.Subject), Header: h, Data: rec.Data})
	if err != nil {
		return false, fmt.Errorf("eventbus: store dead letter of %s #%d: %w", rec.Stream, rec.StreamSeq, err)
	}
	if !ack.Duplicate {
		r.metrics.deadLetters.WithLabelValues(rec.Subject, rec.Kind).Inc()
	}
	return ack.Duplicate, nil
}
