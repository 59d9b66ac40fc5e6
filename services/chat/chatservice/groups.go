package chatservice

import (
	"context"

	"connectrpc.com/connect"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/services/chat/store"
)

// CreateGroup creates the group of an activity, or returns the existing one
// with created = false.
func (s *Service) CreateGroup(ctx context.Context, req *connect.Request[chatv1.CreateGroupRequest]) (*connect.Response[chatv1.CreateGroupResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	ng := store.NewGroup{
		ActivityID: req.Msg.GetActivityId(),
		OwnerID:    req.Msg.GetOwnerId(),
		Name:       req.Msg.GetName(),
	}
	if t := req.Msg.GetEventTime(); t != nil {
		ng.OwnerJoinedAt = t.AsTime()
	}
	g, created, err := s.store.CreateGroup(ctx, ng)
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	if created {
		s.logger.InfoContext(ctx, "group created", "group_id", g.ID, "activity_id", g.ActivityID, "owner_id", g.OwnerID)
	}
	return connect.NewResponse(&chatv1.CreateGroupResponse{Group: groupToProto(g), Created: created}), nil
}

// GetGroupInfo returns a group by its id.
func (s *Service) GetGroupInfo(ctx context.Context, req *connect.Request[chatv1.GetGroupInfoRequest]) (*connect.Response[chatv1.GetGroupInfoResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	g, err := s.store.GroupByID(ctx, req.Msg.GetGroupId())
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&chatv1.GetGroupInfoResponse{Group: groupToProto(g)}), nil
}

// GetGroupByActivityId returns the group of an activity.
func (s *Service) GetGroupByActivityId(ctx context.Context, req *connect.Request[chatv1.GetGroupByActivityIdRequest]) (*connect.Response[chatv1.GetGroupByActivityIdResponse], error) {
	if err := validate(req.Msg); err != nil {
		return nil, err
	}
	g, err := s.store.GroupByActivityID(ctx, req.Msg.GetActivityId())
	if err != nil {
		return nil, s.storeError(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&chatv1.GetGroupByActivityIdResponse{Group: groupToProto(g)}), nil
}
