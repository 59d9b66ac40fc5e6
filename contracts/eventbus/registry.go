package eventbus

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ErrUnimplemented marks the error of a handler method that the consumer
// did not implement: the generated UnimplementedXHandler types return it,
// wrapped with Permanent, so that such an event is dead-lettered at once
// with a reason that names the missing method.
var ErrUnimplemented = errors.New("handler not implemented")

// Unimplemented returns the permanent error of a generated Unimplemented
// handler method: handler is the full name of the handler method, such as
// "activityv1.ActivityEventsHandler.ActivityCreated", and event the full
// proto name of its event. The error matches ErrUnimplemented and
// ErrPermanent.
func Unimplemented(handler string, event protoreflect.FullName) error {
	return Permanent(fmt.Errorf("%w: %s is not implemented, so %s events are dead-lettered", ErrUnimplemented, handler, event))
}

// EventInfo describes one event of a contract without its Go type, for code
// that works on every event alike: command-line tools, dead-letter tooling,
// contract tests. Generated code lists the events of each proto file in a
// Registry.
type EventInfo struct {
	// Subject is the NATS subject the event is published to.
	Subject string
	// Stream is the JetStream stream that stores the subject.
	Stream string
	// New returns a new, empty message of the event's Go type.
	New func() proto.Message
	// Samples is the folder of the event's golden payloads, relative to
	// contracts/samples. It is the subject, by rule: the samples of
	// activity.created are in contracts/samples/activity.created.
	Samples string
	// Policy is the delivery policy the contract declares, or nil when it
	// declares none and the router's options apply.
	Policy *Policy
}

// Name returns the full proto name of the event's message, such as
// "activity.v1.ActivityCreated".
func (e EventInfo) Name() protoreflect.FullName {
	return e.New().ProtoReflect().Descriptor().FullName()
}

// Event returns the event as an untyped Event, for Publish, NewMsg and
// Subscribe with proto.Message as the type parameter.
func (e EventInfo) Event() Event[proto.Message] {
	return Event[proto.Message]{Subject: e.Subject, Stream: e.Stream, New: e.New}
}

// Registry lists event contracts. Generated code declares one per proto file
// with events, for example activityv1.ActivityEvents; registries of several
// files are joined with append.
type Registry []EventInfo

// Lookup returns the event published to subject.
func (r Registry) Lookup(subject string) (EventInfo, bool) {
	for _, e := range r {
		if e.Subject == subject {
			return e, true
		}
	}
	return EventInfo{}, false
}

// Subjects returns the subjects of the events, in registry order.
func (r Registry) Subjects() []string {
	out := make([]string, len(r))
	for i, e := range r {
		out[i] = e.Subject
	}
	return out
}

// Streams returns the distinct streams of the events, sorted.
func (r Registry) Streams() []string {
	var out []string
	for _, e := range r {
		if !slices.Contains(out, e.Stream) {
			out = append(out, e.Stream)
		}
	}
	slices.Sort(out)
	return out
}
