package chatservice

import (
	"context"

	"connectrpc.com/connect"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/services/chat/store"
)

// SendSystemMessage stores a system notice; repeats with the same
// idempotency key return the stored message with created = false.
func (s *Service) SendSystemMessage(ctx context.Context, req *connect.Request[chatv1.SendSystemMessageRequest]) (*connect.Response[chatv1.SendSystemMessageResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	m, created, err := s.store.SendSystemMessage(ctx, store.NewMessage{
		GroupID:         req.Msg.GetGroupId(),
		Text:            req.Msg.GetText(),
		RecipientUserID: req.Msg.GetRecipientUserId(),
		IdempotencyKey:  req.Msg.GetIdempotencyKey(),
	})
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&chatv1.SendSystemMessageResponse{Message: messageToProto(m), Created: created}), nil
}

// ListGroupMessages returns one page of a group's messages, oldest first.
func (s *Service) ListGroupMessages(ctx context.Context, req *connect.Request[chatv1.ListGroupMessagesRequest]) (*connect.Response[chatv1.ListGroupMessagesResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	msgs, next, err := s.store.ListMessages(ctx, req.Msg.GetGroupId(), store.Page{
		Size:  int(req.Msg.GetPageSize()),
		Token: req.Msg.GetPageToken(),
	})
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	res := &chatv1.ListGroupMessagesResponse{Messages: make([]*chatv1.Message, len(msgs)), NextPageToken: next}
	for i, m := range msgs {
		res.Messages[i] = messageToProto(m)
	}
	return connect.NewResponse(res), nil
}
