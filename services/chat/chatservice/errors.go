package chatservice

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/activitychat/chat/services/chat/store"
)

// validator is implemented by every request message: the generated
// Validate method returns a *rules.FieldError that names the field.
type validator interface {
	Validate() error
}

// validate returns an invalid_argument error naming the first bad field of
// msg, or nil.
func validate(msg validator) error {
	if err := msg.Validate(); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}

// storeError maps an error of the store to a Connect error:
//
//   - store.ErrNotFound: not_found
//   - store.ErrOwnerImmutable: failed_precondition
//   - store.ErrInvalidPageToken: invalid_argument naming page_token
//   - store.ErrUnavailable: unavailable, so callers retry
//   - context cancellation and deadlines: canceled and deadline_exceeded
//   - anything else: internal, with the details in the log only
func (s *Service) storeError(ctx context.Context, procedure string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("group not found"))
	case errors.Is(err, store.ErrOwnerImmutable):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("the owner cannot be removed from the group"))
	case errors.Is(err, store.ErrInvalidPageToken):
		return connect.NewError(connect.CodeInvalidArgument, errors.New("page_token: is not a token of this listing"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, store.ErrUnavailable):
		s.logger.WarnContext(ctx, "store unavailable", "procedure", procedure, "error", err)
		return connect.NewError(connect.CodeUnavailable, errors.New("the database is unavailable; retry later"))
	}
	s.logger.ErrorContext(ctx, "store failed", "procedure", procedure, "error", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}
