package eventbus

import (
	"errors"
	"fmt"
)

var (
	// ErrPermanent marks an error that no retry can fix: the message is
	// dead-lettered at once. Wrap errors with Permanent.
	ErrPermanent = errors.New("permanent failure")
	// ErrUnavailable marks an error that says a dependency is down: the
	// subscription stops fetching, holds its messages and probes. Wrap
	// errors with Unavailable.
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrNotReady marks an error that says the message came too early, for
	// example a member joined a group that is not created yet: the message
	// is parked, off its worker, and retried with backoff for up to
	// Retry.MaxHold. Wrap errors with NotReady.
	ErrNotReady = errors.New("not ready yet")
	// ErrUnknownContentType is returned for a message whose Content-Type
	// header names no codec. It is permanent.
	ErrUnknownContentType = errors.New("unknown content type")
	// ErrDecode is returned for a payload that does not decode into the
	// event's type. It is permanent.
	ErrDecode = errors.New("cannot decode payload")
	// ErrInvalid is returned for an event that breaks its field rules. It is
	// permanent; errors.Is(err, rules.ErrInvalid) is true as well.
	ErrInvalid = errors.New("invalid event")
	// ErrNotFound is returned by DeadLetters for a sequence that holds no
	// dead letter.
	ErrNotFound = errors.New("dead letter not found")
)

// classError tags an error with a class sentinel while keeping the original
// in the chain, so errors.Is works for both.
type classError struct {
	class error
	err   error
}

func (e *classError) Error() string   { return e.err.Error() }
func (e *classError) Unwrap() []error { return []error{e.class, e.err} }

func classify(class, err error) error {
	if err == nil {
		return nil
	}
	return &classError{class: class, err: err}
}

// Permanent marks err as permanent: the message is dead-lettered on this
// delivery with err as the reason. Permanent(nil) is nil.
func Permanent(err error) error { return classify(ErrPermanent, err) }

// Unavailable marks err as a dependency outage: the subscription stops
// fetching, holds its messages, keeping them alive, and probes with one of
// them at a time until the handler answers anything else. Holding spends
// no retry budget. Unavailable(nil) is nil.
func Unavailable(err error) error { return classify(ErrUnavailable, err) }

// NotReady marks err as "this message came too early": the message is
// parked off its worker, kept alive, and retried with backoff for up to
// Retry.MaxHold without spending retry budget; the messages behind it flow
// past it. After MaxHold, NotReady counts as a handler failure. NotReady(nil)
// is nil.
func NotReady(err error) error { return classify(ErrNotReady, err) }

// permanentf returns a permanent error wrapping both class and the cause.
func permanentf(class error, format string, args ...any) error {
	return Permanent(fmt.Errorf("%w: %s", class, fmt.Sprintf(format, args...)))
}
