package eventbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers the runtime adds to every dead letter. They describe the dead
// letter; none of them decides where a replay goes (see DeadLetters.Replay).
const (
	HeaderDLQSubject    = "Dlq-Subject"     // the original subject
	HeaderDLQStream     = "Dlq-Stream"      // the original stream
	HeaderDLQSequence   = "Dlq-Sequence"    // the original stream sequence
	HeaderDLQDeliveries = "Dlq-Deliveries"  // deliveries made before giving up
	HeaderDLQConsumer   = "Dlq-Consumer"    // the durable consumer that gave up
	HeaderDLQReason     = "Dlq-Reason"      // why
	HeaderDLQTime       = "Dlq-Time"        // when, RFC 3339
	HeaderDLQMsgID      = "Dlq-Original-Id" // the original Nats-Msg-Id
	// HeaderDLQPayload is set on a dead letter that does not hold the whole
	// original payload: PayloadLost or PayloadTruncated. It is absent when
	// the payload is the original, byte for byte.
	HeaderDLQPayload = "Dlq-Payload"
	// HeaderDLQPayloadSize is the original payload's size in bytes, set
	// when the payload is truncated.
	HeaderDLQPayloadSize = "Dlq-Payload-Size"
	// HeaderDLQPayloadReason says why the payload is lost or truncated.
	HeaderDLQPayloadReason = "Dlq-Payload-Reason"
	// HeaderDLQHeaders is "omitted" when the original headers did not fit
	// into the dead letter either.
	HeaderDLQHeaders = "Dlq-Headers"
	// HeaderReplayOf is set on a replayed message: the dead letter's
	// sequence in the DLQ stream.
	HeaderReplayOf = "Dlq-Replay-Of"
)

// Values of HeaderDLQPayload.
const (
	// PayloadLost marks a dead letter whose original was gone from its
	// stream (removed by a limit, or by an operator) or could not be
	// fetched: it records that the message died, with no payload.
	PayloadLost = "lost"
	// PayloadTruncated marks a dead letter whose original did not fit: it
	// holds the start of the payload; Replay fetches the whole original
	// from its stream while it is still there.
	PayloadTruncated = "truncated"
)

// ErrReplayRefused is returned by DeadLetters.Replay for a dead letter that
// it will not republish: its stored subject maps to no subject that the
// service's consumer reads, its headers contradict where it is stored, or
// its payload is incomplete and the original is gone. Nothing is published.
var ErrReplayRefused = errors.New("eventbus: replay refused")

// Tokens between a subject and a service in dead-letter and replay subjects.
const (
	dlqToken    = ".dlq."
	replayToken = ".replay."
)

// DLQSubject returns the subject on which the dead letters of service's
// consumer of subject are stored: "<subject>.dlq.<service>", with the
// characters a subject token cannot hold in service replaced by '_'.
func DLQSubject(subject, service string) string { return subject + dlqToken + serviceToken(service) }

// ReplaySubject returns the subject a replayed dead letter of service is
// published to: "<subject>.replay.<service>". The source stream stores it
// and only service's consumer of subject reads it, so a replay reaches no
// other service. Handlers see the original subject in Meta.Subject.
func ReplaySubject(subject, service string) string {
	return subject + replayToken + serviceToken(service)
}

// DLQStream returns the name of the stream that keeps stream's dead letters.
func DLQStream(stream string) string { return stream + "_DLQ" }

// serviceToken makes service one valid subject token, as durable names are
// made from it.
func serviceToken(service string) string {
	if service == "" {
		return "_"
	}
	return durableName(service)
}

// DeadLetter is one message in a DLQ stream.
type DeadLetter struct {
	// Seq is the dead letter's sequence in the DLQ stream; operators name
	// dead letters by it.
	Seq uint64
	// Subject is the original subject, derived from the subject the dead
	// letter is stored on (Subject + ".dlq." + service), not from a header.
	Subject string
	// Stream and StreamSeq locate the original message, as the Dlq-Stream
	// and Dlq-Sequence headers say.
	Stream    string
	StreamSeq uint64
	// Deliveries is how often the message was delivered before it died.
	Deliveries int
	// Consumer is the durable consumer that gave up.
	Consumer string
	// Reason says why.
	Reason string
	// Time is when the runtime dead-lettered it.
	Time time.Time
	// Payload is "" when Data is the original payload byte for byte, and
	// PayloadLost or PayloadTruncated otherwise.
	Payload string
	// PayloadSize is the original payload's size when Payload is
	// PayloadTruncated.
	PayloadSize int
	// Header holds all headers: the original ones and the Dlq-* ones.
	Header nats.Header
	// Data is the original payload, byte for byte unless Payload says
	// otherwise.
	Data []byte
}

// parseDeadLetter reads the dead letter stored at seq on storedSubject. It
// returns ok false when storedSubject is not a dead-letter subject of
// service. The original subject comes from storedSubject, which the server
// chose from the DLQ stream's subjects; the Dlq-* headers only describe.
func parseDeadLetter(seq uint64, storedSubject, service string, h nats.Header, data []byte) (dl *DeadLetter, ok bool) {
	subject, ok := strings.CutSuffix(storedSubject, dlqToken+serviceToken(service))
	if !ok || subject == "" {
		return nil, false
	}
	dl = &DeadLetter{
		Seq:      seq,
		Subject:  subject,
		Stream:   h.Get(HeaderDLQStream),
		Consumer: h.Get(HeaderDLQConsumer),
		Reason:   h.Get(HeaderDLQReason),
		Payload:  h.Get(HeaderDLQPayload),
		Header:   h,
		Data:     data,
	}
	dl.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
	dl.Deliveries, _ = strconv.Atoi(h.Get(HeaderDLQDeliveries))
	dl.PayloadSize, _ = strconv.Atoi(h.Get(HeaderDLQPayloadSize))
	dl.Time, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDLQTime))
	return dl, true
}

// DeadLetters lists, shows, replays, deletes and purges the dead letters of
// one consuming service on one stream. It sees only that service's dead
// letters: those of other services consuming the same subjects are stored
// on their own subjects and stay untouched.
type DeadLetters struct {
	js      jetstream.JetStream
	dlq     jetstream.Stream
	source  string // the stream the dead letters come from
	service string // the service token
}

// OpenDeadLetters opens the dead letters of service (the name given to
// WithService) in the DLQ stream of stream (DLQStream(stream)).
//
// Dead letters stored by releases before dead letters were per service, on
// "<subject>.dlq", stay in the DLQ stream but are not seen here; inspect or
// purge them with the nats CLI (nats stream view|purge <STREAM>_DLQ
// --subject <subject>.dlq).
func OpenDeadLetters(ctx context.Context, js jetstream.JetStream, stream, service string) (*DeadLetters, error) {
	s, err := js.Stream(ctx, DLQStream(stream))
	if err != nil {
		return nil, fmt.Errorf("eventbus: open dead letters of %s: %w", stream, err)
	}
	return &DeadLetters{js: js, dlq: s, source: stream, service: serviceToken(service)}, nil
}

// subjects returns the DLQ subjects of the service that hold messages, with
// their counts.
func (d *DeadLetters) subjects(ctx context.Context) (map[string]uint64, error) {
	info, err := d.dlq.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return nil, fmt.Errorf("eventbus: dead letters: %w", err)
	}
	out := map[string]uint64{}
	for subj, n := range info.State.Subjects {
		if s, ok := strings.CutSuffix(subj, dlqToken+d.service); ok && s != "" {
			out[subj] = n
		}
	}
	return out, nil
}

// List returns up to limit dead letters of the service, oldest first,
// starting at sequence from (0 for the oldest). A limit of 0 means all.
func (d *DeadLetters) List(ctx context.Context, from uint64, limit int) ([]DeadLetter, error) {
	subjects, err := d.subjects(ctx)
	if err != nil {
		return nil, err
	}
	// Merge the subjects by sequence, reading each subject's next message.
	heads := map[string]*jetstream.RawStreamMsg{}
	next := func(subj string, seq uint64) error {
		raw, err := d.dlq.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			delete(heads, subj)
			return nil
		}
		if err != nil {
			return fmt.Errorf("eventbus: dead letters: %w", err)
		}
		heads[subj] = raw
		return nil
	}
	for subj := range subjects {
		if err := next(subj, max(from, 1)); err != nil {
			return nil, err
		}
	}
	out := []DeadLetter{}
	for len(heads) > 0 && (limit <= 0 || len(out) < limit) {
		var first *jetstream.RawStreamMsg
		for _, raw := range heads {
			if first == nil || raw.Sequence < first.Sequence {
				first = raw
			}
		}
		if dl, ok := parseDeadLetter(first.Sequence, first.Subject, d.service, first.Header, first.Data); ok {
			out = append(out, *dl)
		}
		if err := next(first.Subject, first.Sequence+1); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Count returns the number of dead letters of the service.
func (d *DeadLetters) Count(ctx context.Context) (uint64, error) {
	subjects, err := d.subjects(ctx)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range subjects {
		n += c
	}
	return n, nil
}

// Get returns the service's dead letter at seq, or an error matching
// ErrNotFound when seq holds none (or one of another service).
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (*DeadLetter, error) {
	raw, err := d.dlq.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: sequence %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("eventbus: dead letter %d: %w", seq, err)
	}
	dl, ok := parseDeadLetter(raw.Sequence, raw.Subject, d.service, raw.Header, raw.Data)
	if !ok {
		return nil, fmt.Errorf("%w: sequence %d holds no dead letter of service %s", ErrNotFound, seq, d.service)
	}
	return dl, nil
}

// Replay republishes the dead letter at seq to the replay subject of its
// original subject (ReplaySubject), which only the service's consumer
// reads, with its original payload and headers, under a new Nats-Msg-Id so
// that stream deduplication does not drop it, and then deletes it from the
// DLQ. Replay is safe because handlers are idempotent.
//
// The target comes from what the runtime owns, never from a header: the
// subject the dead letter is stored on gives the original subject, which
// must be a subject of the source stream that a durable consumer of the
// service reads, with the replay subject among its filters. A dead letter
// whose Dlq-Subject or Dlq-Stream header contradicts that, or whose
// payload is incomplete while its original is gone, is refused with an
// error matching ErrReplayRefused, and nothing is published. A truncated
// dead letter is replayed from the original in the source stream.
func (d *DeadLetters) Replay(ctx context.Context, seq uint64) (*jetstream.PubAck, error) {
	dl, err := d.Get(ctx, seq)
	if err != nil {
		return nil, err
	}
	src, err := d.js.Stream(ctx, d.source)
	if err != nil {
		return nil, fmt.Errorf("eventbus: replay dead letter %d: source stream %s: %w", seq, d.source, err)
	}
	filters, err := consumerFilters(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("eventbus: replay dead letter %d: consumers of %s: %w", seq, d.source, err)
	}
	target, err := replayTarget(dl, d.source, d.service, src.CachedInfo().Config.Subjects, filters)
	if err != nil {
		return nil, err
	}
	header, data := dl.Header, dl.Data
	if dl.Payload != "" {
		if header, data, err = d.original(ctx, src, dl); err != nil {
			return nil, err
		}
	}
	h := nats.Header{}
	for k, v := range header {
		if strings.HasPrefix(k, "Dlq-") || strings.HasPrefix(k, "Nats-") {
			continue
		}
		h[k] = v
	}
	origID := dl.Header.Get(HeaderDLQMsgID)
	if dl.Payload != "" {
		origID = header.Get(jetstream.MsgIDHeader)
	}
	h.Set(HeaderReplayOf, strconv.FormatUint(seq, 10))
	h.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s:replay:%d", origID, seq))
	ack, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: target, Header: h, Data: data}, jetstream.WithExpectStream(d.source))
	if err != nil {
		return nil, fmt.Errorf("eventbus: replay dead letter %d to %s: %w", seq, target, err)
	}
	if err := d.dlq.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return ack, fmt.Errorf("eventbus: replayed dead letter %d but cannot delete it: %w", seq, err)
	}
	return ack, nil
}

// original fetches the whole original of a dead letter whose payload is
// incomplete from the source stream, checking that the message at its
// sequence is on its subject (or the service's replay subject of it).
func (d *DeadLetters) original(ctx context.Context, src jetstream.Stream, dl *DeadLetter) (nats.Header, []byte, error) {
	raw, err := src.GetMsg(ctx, dl.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil, fmt.Errorf("%w: dead letter %d: its payload is %s and the original (%s #%d) is gone",
			ErrReplayRefused, dl.Seq, dl.Payload, d.source, dl.StreamSeq)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("eventbus: replay dead letter %d: fetch the original %s #%d: %w", dl.Seq, d.source, dl.StreamSeq, err)
	}
	if raw.Subject != dl.Subject && raw.Subject != dl.Subject+replayToken+d.service {
		return nil, nil, fmt.Errorf("%w: dead letter %d: %s #%d is on %q, not on %q",
			ErrReplayRefused, dl.Seq, d.source, dl.StreamSeq, raw.Subject, dl.Subject)
	}
	return raw.Header, raw.Data, nil
}

// replayTarget returns the subject a replay of dl publishes to, or why it
// is refused. streamSubjects are the source stream's subjects and filters
// the filter subjects of its durable consumers.
func replayTarget(dl *DeadLetter, source, service string, streamSubjects, filters []string) (string, error) {
	refuse := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("%w: dead letter %d: %s", ErrReplayRefused, dl.Seq, fmt.Sprintf(format, args...))
	}
	if h := dl.Header.Get(HeaderDLQSubject); h != dl.Subject {
		return refuse("its %s header %q contradicts the subject it is stored on (%s)", HeaderDLQSubject, h, dl.Subject)
	}
	if dl.Stream != source {
		return refuse("its %s header %q is not the stream %s", HeaderDLQStream, dl.Stream, source)
	}
	if dl.Payload != "" && dl.Payload != PayloadLost && dl.Payload != PayloadTruncated {
		return refuse("unknown %s %q", HeaderDLQPayload, dl.Payload)
	}
	if !slices.ContainsFunc(streamSubjects, func(p string) bool { return subjectMatches(p, dl.Subject) }) {
		return refuse("subject %q is not a subject of stream %s", dl.Subject, source)
	}
	target := dl.Subject + replayToken + service
	if !slices.ContainsFunc(streamSubjects, func(p string) bool { return subjectMatches(p, target) }) {
		return refuse("stream %s does not store the replay subject %s: start service %s once to provision it", source, target, service)
	}
	if !slices.Contains(filters, target) {
		return refuse("no durable consumer of stream %s reads %s: start service %s once to provision it", source, target, service)
	}
	return target, nil
}

// consumerFilters returns the filter subjects of the durable consumers of s.
func consumerFilters(ctx context.Context, s jetstream.Stream) ([]string, error) {
	l := s.ListConsumers(ctx)
	var out []string
	for info := range l.Info() {
		if info.Config.Durable == "" {
			continue
		}
		if info.Config.FilterSubject != "" {
			out = append(out, info.Config.FilterSubject)
		}
		out = append(out, info.Config.FilterSubjects...)
	}
	return out, l.Err()
}

// subjectMatches reports whether subject is matched by pattern, which may
// hold the wildcards '*' (one token) and '>' (one or more tokens at the end).
func subjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return i == len(p)-1 && len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

// Delete removes the service's dead letter at seq.
func (d *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	if _, err := d.Get(ctx, seq); err != nil {
		return err
	}
	if err := d.dlq.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("%w: sequence %d", ErrNotFound, seq)
		}
		return fmt.Errorf("eventbus: delete dead letter %d: %w", seq, err)
	}
	return nil
}

// Purge removes every dead letter of the service, and no other service's.
func (d *DeadLetters) Purge(ctx context.Context) error {
	info, err := d.dlq.Info(ctx)
	if err != nil {
		return fmt.Errorf("eventbus: purge dead letters: %w", err)
	}
	for _, pattern := range info.Config.Subjects {
		subject, ok := strings.CutSuffix(pattern, dlqToken+"*")
		if !ok || subject == "" {
			continue
		}
		if err := d.dlq.Purge(ctx, jetstream.WithPurgeSubject(subject+dlqToken+d.service)); err != nil {
			return fmt.Errorf("eventbus: purge dead letters of %s: %w", subject, err)
		}
	}
	return nil
}
