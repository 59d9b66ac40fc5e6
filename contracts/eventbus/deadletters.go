package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers the dead-letter forwarder adds to every dead letter.
const (
	HeaderDLQSubject    = "Dlq-Subject"     // the original subject
	HeaderDLQStream     = "Dlq-Stream"      // the original stream
	HeaderDLQSequence   = "Dlq-Sequence"    // the original stream sequence
	HeaderDLQDeliveries = "Dlq-Deliveries"  // deliveries made before giving up
	HeaderDLQConsumer   = "Dlq-Consumer"    // the durable consumer that gave up
	HeaderDLQReason     = "Dlq-Reason"      // why
	HeaderDLQTime       = "Dlq-Time"        // when, RFC 3339
	HeaderDLQMsgID      = "Dlq-Original-Id" // the original Nats-Msg-Id
	// HeaderReplayOf is set on a replayed message: the dead letter's
	// sequence in the DLQ stream.
	HeaderReplayOf = "Dlq-Replay-Of"
)

// DLQSubject returns the dead-letter subject of subject.
func DLQSubject(subject string) string { return subject + ".dlq" }

// DLQStream returns the name of the stream that keeps stream's dead letters.
func DLQStream(stream string) string { return stream + "_DLQ" }

// DeadLetter is one message in a DLQ stream.
type DeadLetter struct {
	// Seq is the dead letter's sequence in the DLQ stream; operators name
	// dead letters by it.
	Seq uint64
	// Subject is the original subject; the dead letter is stored on
	// Subject + ".dlq".
	Subject string
	// Stream and StreamSeq locate the original message.
	Stream    string
	StreamSeq uint64
	// Deliveries is how often the message was delivered before it died.
	Deliveries int
	// Consumer is the durable consumer that gave up.
	Consumer string
	// Reason says why.
	Reason string
	// Time is when the forwarder dead-lettered it.
	Time time.Time
	// Header holds all headers: the original ones and the Dlq-* ones.
	Header nats.Header
	// Data is the original payload, byte for byte.
	Data []byte
}

// DeadLetters lists, shows, replays and purges the dead letters of one
// stream.
type DeadLetters struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// OpenDeadLetters opens the DLQ stream of stream (DLQStream(stream)).
func OpenDeadLetters(ctx context.Context, js jetstream.JetStream, stream string) (*DeadLetters, error) {
	s, err := js.Stream(ctx, DLQStream(stream))
	if err != nil {
		return nil, fmt.Errorf("eventbus: open dead letters of %s: %w", stream, err)
	}
	return &DeadLetters{js: js, stream: s}, nil
}

// List returns up to limit dead letters, oldest first, starting at sequence
// from (0 for the oldest). A limit of 0 means all.
func (d *DeadLetters) List(ctx context.Context, from uint64, limit int) ([]DeadLetter, error) {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("eventbus: dead letters: %w", err)
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return out, nil
	}
	seq := max(from, info.State.FirstSeq)
	for ; seq <= info.State.LastSeq && (limit <= 0 || len(out) < limit); seq++ {
		dl, err := d.Get(ctx, seq)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, *dl)
	}
	return out, nil
}

// Count returns the number of dead letters.
func (d *DeadLetters) Count(ctx context.Context) (uint64, error) {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("eventbus: dead letters: %w", err)
	}
	return info.State.Msgs, nil
}

// Get returns the dead letter at seq, or an error matching ErrNotFound.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (*DeadLetter, error) {
	raw, err := d.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: sequence %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("eventbus: dead letter %d: %w", seq, err)
	}
	h := raw.Header
	dl := &DeadLetter{
		Seq:      raw.Sequence,
		Subject:  h.Get(HeaderDLQSubject),
		Stream:   h.Get(HeaderDLQStream),
		Consumer: h.Get(HeaderDLQConsumer),
		Reason:   h.Get(HeaderDLQReason),
		Header:   h,
		Data:     raw.Data,
	}
	dl.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
	dl.Deliveries, _ = strconv.Atoi(h.Get(HeaderDLQDeliveries))
	dl.Time, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDLQTime))
	return dl, nil
}

// Replay republishes the dead letter at seq to its original subject with its
// original payload and headers, under a new Nats-Msg-Id so that stream
// deduplication does not drop it, and then deletes it from the DLQ. Replay is
// safe because handlers are idempotent.
func (d *DeadLetters) Replay(ctx context.Context, seq uint64) (*jetstream.PubAck, error) {
	dl, err := d.Get(ctx, seq)
	if err != nil {
		return nil, err
	}
	if dl.Subject == "" {
		return nil, fmt.Errorf("eventbus: dead letter %d has no %s header", seq, HeaderDLQSubject)
	}
	h := nats.Header{}
	for k, v := range dl.Header {
		if len(k) > 4 && k[:4] == "Dlq-" || k == jetstream.MsgIDHeader {
			continue
		}
		h[k] = v
	}
	h.Set(HeaderReplayOf, strconv.FormatUint(seq, 10))
	h.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s:replay:%d", dl.Header.Get(HeaderDLQMsgID), seq))
	ack, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: dl.Subject, Header: h, Data: dl.Data})
	if err != nil {
		return nil, fmt.Errorf("eventbus: replay dead letter %d to %s: %w", seq, dl.Subject, err)
	}
	if err := d.Delete(ctx, seq); err != nil {
		return ack, err
	}
	return ack, nil
}

// Delete removes the dead letter at seq.
func (d *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	if err := d.stream.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("%w: sequence %d", ErrNotFound, seq)
		}
		return fmt.Errorf("eventbus: delete dead letter %d: %w", seq, err)
	}
	return nil
}

// Purge removes every dead letter.
func (d *DeadLetters) Purge(ctx context.Context) error {
	if err := d.stream.Purge(ctx); err != nil {
		return fmt.Errorf("eventbus: purge dead letters: %w", err)
	}
	return nil
}
