package chatservice

import (
	"context"

	"connectrpc.com/connect"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/services/chat/store"
)

// AddGroupMember makes a user a member as of the request's event time.
func (s *Service) AddGroupMember(ctx context.Context, req *connect.Request[chatv1.AddGroupMemberRequest]) (*connect.Response[chatv1.AddGroupMemberResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	c, err := s.store.AddMember(ctx, req.Msg.GetGroupId(), req.Msg.GetUserId(), req.Msg.GetEventTime().AsTime())
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&chatv1.AddGroupMemberResponse{Applied: c.Applied, IsMember: c.IsMember}), nil
}

// RemoveGroupMember removes a user as of the request's event time. Removing
// the owner fails with failed_precondition.
func (s *Service) RemoveGroupMember(ctx context.Context, req *connect.Request[chatv1.RemoveGroupMemberRequest]) (*connect.Response[chatv1.RemoveGroupMemberResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	c, err := s.store.RemoveMember(ctx, req.Msg.GetGroupId(), req.Msg.GetUserId(), req.Msg.GetEventTime().AsTime())
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&chatv1.RemoveGroupMemberResponse{Applied: c.Applied, IsMember: c.IsMember}), nil
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
