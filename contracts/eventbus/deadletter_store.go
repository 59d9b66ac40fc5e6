package eventbus

import (
	"context"
	"fmt"
	"net/textproto"
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

// Causes of an incomplete dead letter, the "cause" label of
// messaging_dead_letters_incomplete_total.
const (
	incompleteOriginalLost = "original_lost"  // the original was gone from its stream
	incompleteTruncated    = "truncated"      // the copy was cut to fit the max payload
	incompleteForwardFail  = "forward_failed" // the forwarder gave up fetching the original
)

// maxDLQReasonLen bounds the Dlq-Reason and Dlq-Payload-Reason headers.
const maxDLQReasonLen = 1024

// deadLetterRecord is one dead letter to store: where the original lives,
// why it died, and the original's headers and payload.
type deadLetterRecord struct {
	Subject    string // the original subject (a replay subject is mapped back to it)
	Stream     string // the original stream
	StreamSeq  uint64 // the original's sequence in Stream
	Deliveries uint64 // deliveries made before giving up
	Consumer   string // the durable consumer that gave up
	Kind       string // deadLetterTerminated or deadLetterMaxDeliveries
	Reason     string
	Header     nats.Header // the original headers
	Data       []byte      // the original payload
	// Missing, when set, says why Header and Data are not the original's:
	// the dead letter records that the message died, without its payload.
	Missing string
	// MissingCause is the metric cause of Missing: incompleteOriginalLost
	// (the default) or incompleteForwardFail.
	MissingCause string
	// ID, when set, is the dead letter's Nats-Msg-Id instead of
	// deadLetterID(Stream, StreamSeq, Consumer).
	ID string
}

// deadLetterID is the Nats-Msg-Id of a dead letter: the subscription that
// stores it before terminating and the forwarder that stores it after an
// advisory use the same id, so the DLQ keeps it once.
func deadLetterID(stream string, seq uint64, consumer string) string {
	return stream + ":" + strconv.FormatUint(seq, 10) + ":" + consumer
}

// storeDeadLetter publishes rec to the router's dead-letter subject of its
// original subject and waits for the DLQ stream to store it. It reports
// whether the DLQ already held it.
//
// A dead letter always fits: when the original's headers and payload plus
// the Dlq-* headers exceed the connection's max payload, it stores what
// fits, marked with Dlq-Payload: truncated (and Dlq-Headers: omitted when
// the original headers had to go too), the original payload size and why;
// Dlq-Stream and Dlq-Sequence say where to fetch the original.
func (r *Router) storeDeadLetter(ctx context.Context, rec deadLetterRecord) (duplicate bool, err error) {
	subject := originalSubject(rec.Subject, r.cfg.service)
	msg, cause := buildDeadLetter(rec, subject, r.cfg.service, r.js.Conn().MaxPayload(), time.Now())
	ack, err := r.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(DLQStream(rec.Stream)))
	if err != nil {
		return false, fmt.Errorf("eventbus: store dead letter of %s #%d: %w", rec.Stream, rec.StreamSeq, err)
	}
	if !ack.Duplicate {
		r.metrics.deadLetters.WithLabelValues(subject, rec.Kind).Inc()
		if cause != "" {
			r.metrics.deadLettersIncomplete.WithLabelValues(subject, cause).Inc()
		}
	}
	return ack.Duplicate, nil
}

// buildDeadLetter makes the dead letter of rec on subject's DLQ subject of
// service, at most maxPayload bytes of headers and payload as NATS counts
// them. It returns the metric cause when the dead letter is incomplete.
func buildDeadLetter(rec deadLetterRecord, subject, service string, maxPayload int64, now time.Time) (*nats.Msg, string) {
	dlq := nats.Header{}
	dlq.Set(HeaderDLQSubject, subject)
	dlq.Set(HeaderDLQStream, rec.Stream)
	dlq.Set(HeaderDLQSequence, strconv.FormatUint(rec.StreamSeq, 10))
	dlq.Set(HeaderDLQDeliveries, strconv.FormatUint(rec.Deliveries, 10))
	dlq.Set(HeaderDLQConsumer, rec.Consumer)
	dlq.Set(HeaderDLQReason, cut(rec.Reason, maxDLQReasonLen))
	dlq.Set(HeaderDLQTime, now.UTC().Format(time.RFC3339Nano))
	id := rec.ID
	if id == "" {
		id = deadLetterID(rec.Stream, rec.StreamSeq, rec.Consumer)
	}
	dlq.Set(jetstream.MsgIDHeader, id)
	// PublishMsg adds this header for WithExpectStream; count it.
	dlq.Set(jetstream.ExpectedStreamHeader, DLQStream(rec.Stream))
	if id := rec.Header.Get(jetstream.MsgIDHeader); id != "" {
		dlq.Set(HeaderDLQMsgID, id)
	}
	msg := &nats.Msg{Subject: DLQSubject(subject, service), Header: dlq}
	if rec.Missing != "" {
		cause := rec.MissingCause
		if cause == "" {
			cause = incompleteOriginalLost
		}
		dlq.Set(HeaderDLQPayload, PayloadLost)
		dlq.Set(HeaderDLQPayloadReason, cut(rec.Missing, maxDLQReasonLen))
		msg.Header = withoutEcho(dlq)
		return msg, cause
	}
	// The original headers, minus the ones that would steer this publish.
	h := make(nats.Header, len(rec.Header)+len(dlq))
	for k, v := range rec.Header {
		if k == jetstream.MsgIDHeader || strings.HasPrefix(k, "Nats-") || strings.HasPrefix(k, "Dlq-") {
			continue
		}
		h[k] = v
	}
	for k, v := range dlq {
		h[k] = v
	}
	if headerSize(h)+int64(len(rec.Data)) <= maxPayload {
		msg.Header, msg.Data = withoutEcho(h), rec.Data
		return msg, ""
	}
	// Too big: keep what fits and say so.
	why := fmt.Sprintf("the dead letter would exceed the max payload of %d bytes; fetch the original from stream %s sequence %d",
		maxPayload, rec.Stream, rec.StreamSeq)
	dlq.Set(HeaderDLQPayload, PayloadTruncated)
	dlq.Set(HeaderDLQPayloadSize, strconv.Itoa(len(rec.Data)))
	dlq.Set(HeaderDLQPayloadReason, why)
	for k, v := range dlq {
		h[k] = v
	}
	if headerSize(h) > maxPayload/2 {
		// The original headers take too much room: keep only ours.
		h = dlq
		h.Set(HeaderDLQHeaders, "omitted")
	}
	room := max(maxPayload-headerSize(h), 0)
	msg.Header, msg.Data = withoutEcho(h), rec.Data[:min(int64(len(rec.Data)), room)]
	return msg, incompleteTruncated
}

// withoutEcho drops the Nats-Expected-Stream header again: PublishMsg sets
// it from its option, and buildDeadLetter only counted its size.
func withoutEcho(h nats.Header) nats.Header {
	h.Del(jetstream.ExpectedStreamHeader)
	return h
}

// headerSize is the size NATS counts for h on the wire, as nats.go encodes
// it: the version line, "Key: value\r\n" per value, and the closing CRLF.
func headerSize(h nats.Header) int64 {
	if len(h) == 0 {
		return 0
	}
	n := int64(len("NATS/1.0\r\n") + 2)
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(textproto.TrimString(v)) + 4)
		}
	}
	return n
}

// originalSubject maps a replay subject of service back to the subject it
// replays, and returns any other subject as it is.
func originalSubject(subject, service string) string {
	if s, ok := strings.CutSuffix(subject, replayToken+serviceToken(service)); ok && s != "" {
		return s
	}
	return subject
}

// cut shortens s to at most n bytes, on a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
