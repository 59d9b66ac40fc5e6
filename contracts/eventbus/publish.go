package eventbus

import (
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
	msg, err := NewMsg(ctx, ev, event, opts...)
	if err != nil {
		return nil, err
	}
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
	cfg := publishConfig{contentType: ContentTypeJSON}
	for _, o := range opts {
		o.applyPublish(&cfg)
	}
	if err := Validate(event); err != nil {
		return nil, fmt.Errorf("eventbus: publish %s: %w", ev.Subject, err)
	}
	data, err := Encode(cfg.contentType, event)
	if err != nil {
		return nil, fmt.Errorf("eventbus: encode %s: %w", ev.Subject, err)
	}
	if cfg.msgID == "" {
		if cfg.msgID, err = MsgID(ev.Subject, event); err != nil {
			return nil, err
		}
	}
	h := cfg.header
	if h == nil {
		h = make(nats.Header, 4)
	}
	h.Set(HeaderContentType, cfg.contentType)
	h.Set(HeaderEventType, string(event.ProtoReflect().Descriptor().FullName()))
	h.Set(jetstream.MsgIDHeader, cfg.msgID)
	h.Set(HeaderTraceparent, childTraceparent(TraceparentFromContext(ctx)))
	return &nats.Msg{Subject: ev.Subject, Header: h, Data: data}, nil
}

// MsgID returns the default Nats-Msg-Id of event on subject: a hash of the
// subject and the event's deterministic binary encoding, so the JSON and
// binary forms of one event share an id.
func MsgID(subject string, event proto.Message) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(event)
	if err != nil {
		return "", fmt.Errorf("eventbus: message id of %s: %w", subject, err)
	}
	h := sha256.New()
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}
