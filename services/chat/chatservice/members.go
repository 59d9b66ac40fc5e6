package chatservice

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/services/chat/store"
)

// AddGroupMember makes a user a member as of the request's event time, or
// keeps the change as pending when it names an activity without a group.
func (s *Service) AddGroupMember(ctx context.Context, req *connect.Request[chatv1.AddGroupMemberRequest]) (*connect.Response[chatv1.AddGroupMemberResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	e, err := membershipEvent(req.Msg)
	if err != nil {
		return nil, err
	}
	c, err := s.store.AddMember(ctx, e)
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&chatv1.AddGroupMemberResponse{
		Applied: c.Applied, IsMember: c.IsMember, Pending: c.Pending, NoticeStored: c.NoticeStored,
	}), nil
}

// RemoveGroupMember removes a user as of the request's event time. Removing
// the owner fails with failed_precondition.
func (s *Service) RemoveGroupMember(ctx context.Context, req *connect.Request[chatv1.RemoveGroupMemberRequest]) (*connect.Response[chatv1.RemoveGroupMemberResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	e, err := membershipEvent(req.Msg)
	if err != nil {
		return nil, err
	}
	c, err := s.store.RemoveMember(ctx, e)
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&chatv1.RemoveGroupMemberResponse{
		Applied: c.Applied, IsMember: c.IsMember, Pending: c.Pending, NoticeStored: c.NoticeStored,
	}), nil
}

// membershipRequest is what AddGroupMemberRequest and
// RemoveGroupMemberRequest share.
type membershipRequest interface {
	GetGroupId() string
	GetActivityId() string
	GetUserId() string
	GetEventTime() *timestamppb.Timestamp
	GetNoticeText() string
	GetNoticeIdempotencyKey() string
}

// membershipEvent returns the store's input for a membership request, or
// invalid_argument unless exactly one of group_id and activity_id is set.
func membershipEvent(r membershipRequest) (store.MembershipEvent, error) {
	switch {
	case r.GetGroupId() == "" && r.GetActivityId() == "":
		return store.MembershipEvent{}, connect.NewError(connect.CodeInvalidArgument, errors.New("group_id: set group_id or activity_id"))
	case r.GetGroupId() != "" && r.GetActivityId() != "":
		return store.MembershipEvent{}, connect.NewError(connect.CodeInvalidArgument, errors.New("activity_id: set group_id or activity_id, not both"))
	}
	return store.MembershipEvent{
		GroupID:    r.GetGroupId(),
		ActivityID: r.GetActivityId(),
		UserID:     r.GetUserId(),
		EventTime:  r.GetEventTime().AsTime(),
		Notice:     store.Notice{Text: r.GetNoticeText(), IdempotencyKey: r.GetNoticeIdempotencyKey()},
	}, nil
}

// ListGroupMembers returns one page of a group's current members.
func (s *Service) ListGroupMembers(ctx context.Context, req *connect.Request[chatv1.ListGroupMembersRequest]) (*connect.Response[chatv1.ListGroupMembersResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	members, next, err := s.store.ListMembers(ctx, req.Msg.GetGroupId(), store.Page{
		Size:  int(req.Msg.GetPageSize()),
		Token: req.Msg.GetPageToken(),
	})
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	res := &chatv1.ListGroupMembersResponse{Members: make([]*chatv1.Member, len(members)), NextPageToken: next}
	for i, m := range members {
		res.Members[i] = memberToProto(m)
	}
	return connect.NewResponse(res), nil
}
