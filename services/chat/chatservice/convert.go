package chatservice

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/services/chat/store"
)

func groupToProto(g store.Group) *chatv1.Group {
	return &chatv1.Group{
		GroupId:     g.ID,
		ActivityId:  g.ActivityID,
		Name:        g.Name,
		OwnerId:     g.OwnerID,
		MemberCount: g.MemberCount,
		CreatedAt:   timestamppb.New(g.CreatedAt),
	}
}

func roleToProto(r store.Role) chatv1.Role {
	switch r {
	case store.RoleOwner:
		return chatv1.Role_ROLE_OWNER
	case store.RoleMember:
		return chatv1.Role_ROLE_MEMBER
	}
	return chatv1.Role_ROLE_UNSPECIFIED
}

func memberToProto(m store.Member) *chatv1.Member {
	return &chatv1.Member{
		UserId:   m.UserID,
		Role:     roleToProto(m.Role),
		JoinedAt: timestamppb.New(m.JoinedAt),
	}
}

func messageToProto(m store.Message) *chatv1.Message {
	return &chatv1.Message{
		MessageId:       m.ID,
		GroupId:         m.GroupID,
		Text:            m.Text,
		RecipientUserId: m.RecipientUserID,
		System:          m.System,
		CreatedAt:       timestamppb.New(m.CreatedAt),
	}
}
