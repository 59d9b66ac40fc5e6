package eventbus

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
)

// Event describes one event contract: the subject and stream from the proto
// option, and how to make an empty message to decode into. Generated code
// declares one per event message, for example activityv1.ActivityCreatedEvent.
type Event[T proto.Message] struct {
	// Subject is the NATS subject the event is published to.
	Subject string
	// Stream is the JetStream stream that stores the subject.
	Stream string
	// New returns a new, empty message.
	New func() T
}

// Handler handles one decoded, validated event. Returning nil acknowledges
// it; see the package documentation for how errors are treated.
type Handler[T proto.Message] func(ctx context.Context, event T, meta Meta) error

// Meta is what the router knows about a message besides its payload.
type Meta struct {
	// Subject is the subject the message was published to.
	Subject string
	// Stream and Consumer name the stream and durable consumer it came from.
	Stream, Consumer string
	// StreamSeq is the message's sequence in the stream; with Stream it
	// identifies the message for ever.
	StreamSeq uint64
	// Delivery counts the server's deliveries of this message, starting at
	// 1. Restarts, drains and crashes add deliveries as well as failures.
	Delivery uint64
	// MaxDeliver is the most deliveries the consumer allows: the crash-loop
	// backstop, above the retry budget (see WithMaxDeliver).
	MaxDeliver int
	// Attempt counts the handler failures of this message so far, plus
	// one: it is 1 until the handler has failed. Holds, waits, restarts and
	// crashes do not add to it.
	Attempt int
	// MaxAttempts is Retry.MaxRetries+1: a failure on this attempt
	// dead-letters the message.
	MaxAttempts int
	// Published is when the stream stored the message.
	Published time.Time
	// MsgID is the message's Nats-Msg-Id header.
	MsgID string
	// Traceparent is the message's W3C trace-context header.
	Traceparent string
	// Header holds all the message's headers. Do not modify it.
	Header nats.Header
}

// validator is implemented by the Validate methods that protoc-gen-go-events
// generates for messages with field rules.
type validator interface {
	Validate() error
}
