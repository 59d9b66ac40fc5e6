package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"connectrpc.com/connect"
	"github.com/activitychat/chat/contracts/eventbus"
)

// Classify wraps the error of a chat call named op for the eventbus
// runtime, telling "the chat service is down" apart from "this event is
// bad":
//
//   - unavailable, deadline_exceeded, resource_exhausted, unauthenticated,
//     permission_denied and network errors such as a refused connection mean
//     the chat service cannot serve anyone right now (or this consumer is
//     misconfigured): eventbus.Unavailable, so the subscription holds and
//     probes without spending deliveries.
//   - invalid_argument and failed_precondition (such as removing the
//     group's owner) cannot succeed on retry: eventbus.Permanent, so the
//     event is dead-lettered with the reason.
//   - not_found, when notFoundMeansEarly is true, means the activity's group
//     does not exist yet because its created event is still on its way:
//     eventbus.NotReady, so the event is retried in place. The handlers of
//     this package name groups by activity, which the chat service never
//     answers with not_found, and pass false.
//   - anything else is returned as a plain error and retried with backoff.
//
// Classify returns nil for a nil err.
func Classify(op string, err error, notFoundMeansEarly bool) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("chat %s: %w", op, err)
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeResourceExhausted,
		connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return eventbus.Unavailable(wrapped)
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition:
		return eventbus.Permanent(wrapped)
	case connect.CodeNotFound:
		if notFoundMeansEarly {
			return eventbus.NotReady(wrapped)
		}
		return wrapped
	}
	if isNetworkError(err) {
		return eventbus.Unavailable(wrapped)
	}
	return wrapped
}

// isNetworkError reports errors that say the service cannot be reached,
// for the case where they arrive without a Connect code.
func isNetworkError(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}
