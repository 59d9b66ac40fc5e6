package eventbus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// A PublishOption changes how Publish encodes and publishes an event.
type PublishOption interface {
	applyPublish(*publishConfig)
}

type publishConfig struct {
	contentType string
	msgID       string
	header      nats.Header
}

type publishOptionFunc func(*publishConfig)

func (f publishOptionFunc) applyPublish(c *publishConfig) { f(c) }

// WithBinary encodes the event as binary protobuf instead of JSON.
func WithBinary() PublishOption {
	return publishOptionFunc(func(c *publishConfig) { c.contentType = ContentTypeProto })
}

// WithMsgID sets the Nats-Msg-Id header, the key JetStream deduplicates on
// within the stream's duplicate window. The generated PublishX functions
// pass it through. The default is derived from the subject and the event's
// content (see MsgID), so republishing an identical event is dropped. That
// default is safe when two distinct events never have identical fields
// within the window, as when each carries its own event time at a
// resolution finer than the producer's event rate. Give an id of your own,
// such as the producer's outbox row id, when two identical events are meant
// to be distinct: a user who joins, leaves and joins again within one
// second of a seconds-resolution clock, for example.
func WithMsgID(id string) PublishOption {
	return publishOptionFunc(func(c *publishConfig) { c.msgID = id })
}

// WithHeader adds a header to the published message.
func WithHeader(key, value string) PublishOption {
	return publishOptionFunc(func(c *publishConfig) {
		if c.header == nil {
			c.header = nats.Header{}
		}
		c.header.Add(key, value)
	})
}

// Publish validates event, encodes it and publishes it to ev.Subject,
// waiting for the stream's acknowledgement. Generated PublishX functions call
// it. A duplicate (same Nats-Msg-Id within the stream's window) returns an
// acknowledgement with Duplicate set, and the event is not stored.
//
// Deduplication trusts the id, not the content: whoever may publish to the
// subject can store a different message, a poison one for instance, under
// the id a later real event will carry, and within the duplicate window
// JetStream then drops the real event. The default id is a hash of the
// event, so this needs its exact content in advance; an id of WithMsgID may
// be easier to guess. Let only producers publish to event subjects (NATS
// permissions), and treat a Duplicate acknowledgement of an event the
// producer has not published before as a lost event.
func Publish[T proto.Message](ctx context.Context, js jetstream.JetStream, ev Event[T], event T, opts ...PublishOption) (*jetstream.PubAck, error) {
	scratch := encodeBuffers.Get().(*[]byte)
	defer putEncodeBuffer(scratch)
	msg, err := buildMsg(ctx, ev.Subject, event, opts, scratch)
	if err != nil {
		return nil, err
	}
	// The payload stays in the scratch buffer: nats.go copies it into its
	// write buffer before PublishMsg returns, and a synchronous publish
	// keeps no reference to the message after that.
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("eventbus: publish %s: %w", ev.Subject, err)
	}
	return ack, nil
}

// NewMsg validates and encodes event into the NATS message that Publish
// would send, for producers that publish asynchronously in bulk with
// jetstream.JetStream.PublishMsgAsync.
func NewMsg[T proto.Message](ctx context.Context, ev Event[T], event T, opts ...PublishOption) (*nats.Msg, error) {
	scratch := encodeBuffers.Get().(*[]byte)
	defer putEncodeBuffer(scratch)
	msg, err := buildMsg(ctx, ev.Subject, event, opts, scratch)
	if err != nil {
		return nil, err
	}
	// PublishMsgAsync keeps the message until its acknowledgement, and
	// the caller may keep it for longer: it gets a payload of its own.
	msg.Data = bytes.Clone(msg.Data)
	return msg, nil
}

// outMsg is a published message with the backing of its header values and
// the configuration it was built with, so that the three cost one
// allocation: a configuration on the stack would escape to the heap anyway,
// through the calls of the PublishOption interface.
type outMsg struct {
	msg    nats.Msg
	values [4]string
	cfg    publishConfig
}

// buildMsg validates and encodes event into a message whose Data is in
// *scratch. It allocates the message with its headers, one string that
// holds the message id and the traceparent, and, when no header option
// gave one, the header map.
func buildMsg(ctx context.Context, subject string, event proto.Message, opts []PublishOption, scratch *[]byte) (*nats.Msg, error) {
	m := &outMsg{cfg: publishConfig{contentType: ContentTypeJSON}}
	cfg := &m.cfg
	for _, o := range opts {
		o.applyPublish(cfg)
	}
	if err := Validate(event); err != nil {
		return nil, fmt.Errorf("eventbus: publish %s: %w", subject, err)
	}
	b, payload, err := appendPayload((*scratch)[:0], subject, event, cfg.contentType)
	if err != nil {
		return nil, fmt.Errorf("eventbus: encode %s: %w", subject, err)
	}
	var ids [2*msgIDBytes + traceparentLen]byte
	text := ids[:0]
	if cfg.msgID == "" {
		var sum [sha256.Size]byte
		if cfg.contentType == ContentTypeProto {
			// b holds what the id hashes: see appendPayload.
			sum = sha256.Sum256(b)
		} else if b, sum, err = appendHashEvent(b, subject, event); err != nil {
			return nil, fmt.Errorf("eventbus: message id of %s: %w", subject, err)
		}
		text = hex.AppendEncode(text, sum[:msgIDBytes])
	}
	text = appendChildTraceparent(text, TraceparentFromContext(ctx))
	*scratch = b
	idAndTrace := string(text)
	if cfg.msgID == "" {
		cfg.msgID = idAndTrace[:2*msgIDBytes]
	}
	m.values = [4]string{
		cfg.contentType,
		string(event.ProtoReflect().Descriptor().FullName()),
		cfg.msgID,
		idAndTrace[len(idAndTrace)-traceparentLen:],
	}
	h := cfg.header
	if h == nil {
		h = make(nats.Header, len(m.values))
	}
	// As Header.Set, with one backing array for the four values; each is
	// capped so that an append to it cannot reach the next.
	for i, k := range [...]string{HeaderContentType, HeaderEventType, jetstream.MsgIDHeader, HeaderTraceparent} {
		h[k] = m.values[i : i+1 : i+1]
	}
	m.msg = nats.Msg{Subject: subject, Header: h, Data: b[payload:]}
	return &m.msg, nil
}

// appendPayload appends the encoding of event to b and returns where in b
// it starts. A binary payload is the deterministic encoding after the
// subject and a zero byte, so that b is then what the default message id
// hashes and the event is encoded once.
func appendPayload(b []byte, subject string, event proto.Message, contentType string) ([]byte, int, error) {
	if contentType == ContentTypeProto {
		b = appendHashPrefix(b, subject)
		start := len(b)
		b, err := deterministic.MarshalAppend(b, event)
		return b, start, err
	}
	b, err := appendJSON(b, event)
	return b, 0, err
}

// msgIDBytes is how much of the hash the default message id keeps.
const msgIDBytes = 16

var deterministic = proto.MarshalOptions{Deterministic: true}

// MsgID returns the default Nats-Msg-Id of event on subject: a hash of the
// subject and the event's deterministic binary encoding, so the JSON and
// binary forms of one event share an id.
func MsgID(subject string, event proto.Message) (string, error) {
	scratch := encodeBuffers.Get().(*[]byte)
	defer putEncodeBuffer(scratch)
	b, sum, err := appendHashEvent((*scratch)[:0], subject, event)
	*scratch = b
	if err != nil {
		return "", fmt.Errorf("eventbus: message id of %s: %w", subject, err)
	}
	return hex.EncodeToString(sum[:msgIDBytes]), nil
}

// appendHashEvent hashes what MsgID hashes, using the end of b as scratch
// space, and returns b as it was.
func appendHashEvent(b []byte, subject string, event proto.Message) ([]byte, [sha256.Size]byte, error) {
	start := len(b)
	b = appendHashPrefix(b, subject)
	b, err := deterministic.MarshalAppend(b, event)
	if err != nil {
		return b, [sha256.Size]byte{}, err
	}
	return b[:start], sha256.Sum256(b[start:]), nil
}

// appendHashPrefix appends what the hash of the message id covers before
// the event's encoding: the subject and a zero byte.
func appendHashPrefix(b []byte, subject string) []byte {
	b = append(b, subject...)
	return append(b, 0)
}
