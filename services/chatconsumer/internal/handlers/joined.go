package handlers

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	chatv1 "github.com/activitychat/chat/gen/chat/v1"
)

// ActivityMemberJoined finds the activity's group by activity id, adds the
// user as of joined_at and, when the user is a member after the call, sends
// them a notice. A join that arrives before its activity's created event is
// NotReady and retried in place until the group exists. A join older than
// the user's latest leave changes nothing and sends no notice.
func (h *Handlers) ActivityMemberJoined(ctx context.Context, ev *activityv1.ActivityMemberJoined, _ eventbus.Meta) error {
	group, err := h.groupOf(ctx, ev.GetActivityId())
	if err != nil {
		return err
	}
	res, err := h.chat.AddGroupMember(ctx, connect.NewRequest(&chatv1.AddGroupMemberRequest{
		GroupId:   group.GetGroupId(),
		UserId:    ev.GetUserId(),
		EventTime: ev.GetJoinedAt(),
	}))
	if err != nil {
		return h.writeFailed(ev.GetActivityId(), "AddGroupMember", err)
	}
	if !res.Msg.GetIsMember() {
		h.log.DebugContext(ctx, "stale join ignored: a later leave wins",
			slog.String("activity_id", ev.GetActivityId()), slog.String("user_id", ev.GetUserId()))
		return nil
	}
	_, err = h.chat.SendSystemMessage(ctx, connect.NewRequest(&chatv1.SendSystemMessageRequest{
		GroupId:         group.GetGroupId(),
		Text:            noticeText(h.notices.Joined, ev.GetActivityId(), ev.GetUserId(), group.GetName()),
		RecipientUserId: ev.GetUserId(),
		IdempotencyKey:  JoinedNoticeKey(ev),
	}))
	return h.writeFailed(ev.GetActivityId(), "SendSystemMessage", err)
}

// groupOf returns the group of an activity, from the cache or the chat
// service. A missing group is NotReady: the activity's created event has not
// been handled yet.
func (h *Handlers) groupOf(ctx context.Context, activityID string) (*chatv1.Group, error) {
	if g := h.groups.get(activityID); g != nil {
		return g, nil
	}
	res, err := h.chat.GetGroupByActivityId(ctx, connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{
		ActivityId: activityID,
	}))
	if err != nil {
		return nil, Classify("GetGroupByActivityId", err, true)
	}
	h.groups.put(activityID, res.Msg.GetGroup())
	return res.Msg.GetGroup(), nil
}

// writeFailed classifies the error of a write on an activity's group. A
// not_found group, which a cached lookup can yield, drops the cache entry
// and is NotReady, so that the retry looks the group up again.
func (h *Handlers) writeFailed(activityID, op string, err error) error {
	if err == nil {
		return nil
	}
	if connect.CodeOf(err) == connect.CodeNotFound {
		h.groups.forget(activityID)
	}
	return Classify(op, err, true)
}
