package chatservice

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/services/chat/store"
)

// failingStore fails every lookup with err.
type failingStore struct {
	store.Store
	err error
}

func (f failingStore) GroupByID(context.Context, string) (store.Group, error) {
	return store.Group{}, f.err
}

func TestStoreErrors(t *testing.T) {
	tests := []struct {
		err  error
		want connect.Code
	}{
		{store.ErrNotFound, connect.CodeNotFound},
		{store.ErrOwnerImmutable, connect.CodeFailedPrecondition},
		{fmt.Errorf("wrapped: %w", store.ErrInvalidPageToken), connect.CodeInvalidArgument},
		{fmt.Errorf("%w: connection refused", store.ErrUnavailable), connect.CodeUnavailable},
		{context.Canceled, connect.CodeCanceled},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded},
		{errors.New("syntax error at or near"), connect.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			s := New(failingStore{err: tt.err}, nil)
			_, err := s.GetGroupInfo(context.Background(), connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: "grp_1"}))
			if got := connect.CodeOf(err); got != tt.want {
				t.Errorf("code = %v, want %v", got, tt.want)
			}
			if tt.want == connect.CodeInternal && err != nil && errors.Is(err, tt.err) {
				t.Errorf("internal error %v exposes the store's error", err)
			}
		})
	}
}

func TestValidateBeforeStore(t *testing.T) {
	// An invalid request never reaches the store.
	s := New(failingStore{err: errors.New("store called")}, nil)
	_, err := s.GetGroupInfo(context.Background(), connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: "bad id"}))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || ce.Message() == "" || ce.Message()[:8] != "group_id" {
		t.Errorf("err = %v, want invalid_argument naming group_id", err)
	}
}
