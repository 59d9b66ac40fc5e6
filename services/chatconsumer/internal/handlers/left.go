package handlers

import (
	"context"

	"connectrpc.com/connect"
	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	chatv1 "github.com/activitychat/chat/gen/chat/v1"
)

// ActivityMemberLeft removes the user from the activity's group as of
// left_at, in one call that carries the notice: the chat service stores the
// notice in the transaction of the change, and only when the leave ends a
// membership, never for a user who was not a member. A leave that arrives
// before its activity's created event is kept as pending, as a join is. A
// leave older than the user's latest join changes nothing. Removing the
// group's owner is refused by the chat service (failed_precondition), which
// dead-letters the event.
func (h *Handlers) ActivityMemberLeft(ctx context.Context, ev *activityv1.ActivityMemberLeft, _ eventbus.Meta) error {
	res, err := h.chat.RemoveGroupMember(ctx, connect.NewRequest(&chatv1.RemoveGroupMemberRequest{
		ActivityId:           ev.GetActivityId(),
		UserId:               ev.GetUserId(),
		EventTime:            ev.GetLeftAt(),
		NoticeText:           memberNoticeText(h.left, ev.GetActivityId(), ev.GetUserId()),
		NoticeIdempotencyKey: LeftNoticeKey(ev),
	}))
	if err != nil {
		return Classify("RemoveGroupMember", err, false)
	}
	h.logMembership(ctx, "leave", ev.GetActivityId(), ev.GetUserId(), res.Msg.GetApplied(), res.Msg.GetPending())
	return nil
}
