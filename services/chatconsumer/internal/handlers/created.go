package handlers

import (
	"context"

	"connectrpc.com/connect"
	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	chatv1 "github.com/activitychat/chat/gen/chat/v1"
)

// ActivityCreated creates the activity's group with the creator as owner and
// the title as name, then sends the creator a notice. Both calls are
// idempotent: a repeat returns the existing group and the stored notice. The
// notice is sent on every attempt, not only when the group was new, so that
// a failure between the two calls is repaired by the retry.
func (h *Handlers) ActivityCreated(ctx context.Context, ev *activityv1.ActivityCreated, _ eventbus.Meta) error {
	res, err := h.chat.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{
		ActivityId: ev.GetActivityId(),
		OwnerId:    ev.GetCreatorId(),
		Name:       ev.GetTitle(),
		EventTime:  ev.GetCreatedAt(),
	}))
	if err != nil {
		return Classify("CreateGroup", err, false)
	}
	group := res.Msg.GetGroup()
	_, err = h.chat.SendSystemMessage(ctx, connect.NewRequest(&chatv1.SendSystemMessageRequest{
		GroupId:         group.GetGroupId(),
		Text:            noticeText(h.created, ev.GetActivityId(), ev.GetCreatorId(), group.GetName()),
		RecipientUserId: ev.GetCreatorId(),
		IdempotencyKey:  CreatedNoticeKey(ev),
	}))
	return Classify("SendSystemMessage", err, false)
}
