package handlers

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	chatv1 "github.com/activitychat/chat/gen/chat/v1"
)

// ActivityMemberLeft finds the activity's group by activity id, removes the
// user as of left_at and, when the user is not a member after the call,
// sends them a notice. A leave that arrives before its activity's created
// event is NotReady and retried in place until the group exists. A leave
// older than the user's latest join changes nothing and sends no notice.
// Removing the group's owner is refused by the chat service
// (failed_precondition), which dead-letters the event.
func (h *Handlers) ActivityMemberLeft(ctx context.Context, ev *activityv1.ActivityMemberLeft, _ eventbus.Meta) error {
	group, err := h.groupOf(ctx, ev.GetActivityId())
	if err != nil {
		return err
	}
	res, err := h.chat.RemoveGroupMember(ctx, connect.NewRequest(&chatv1.RemoveGroupMemberRequest{
		GroupId:   group.GetGroupId(),
		UserId:    ev.GetUserId(),
		EventTime: ev.GetLeftAt(),
	}))
	if err != nil {
		return h.writeFailed(ev.GetActivityId(), "RemoveGroupMember", err)
	}
	if res.Msg.GetIsMember() {
		h.log.DebugContext(ctx, "stale leave ignored: a later join wins",
			slog.String("activity_id", ev.GetActivityId()), slog.String("user_id", ev.GetUserId()))
		return nil
	}
	_, err = h.chat.SendSystemMessage(ctx, connect.NewRequest(&chatv1.SendSystemMessageRequest{
		GroupId:         group.GetGroupId(),
		Text:            noticeText(h.notices.Left, ev.GetActivityId(), ev.GetUserId(), group.GetName()),
		RecipientUserId: ev.GetUserId(),
		IdempotencyKey:  LeftNoticeKey(ev),
	}))
	return h.writeFailed(ev.GetActivityId(), "SendSystemMessage", err)
}
