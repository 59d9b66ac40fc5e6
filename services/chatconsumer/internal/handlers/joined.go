package handlers

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	chatv1 "github.com/activitychat/chat/gen/chat/v1"
)

// ActivityMemberJoined adds the user to the activity's group as of
// joined_at, in one call that carries the notice: the chat service stores
// the notice in the transaction of the change, and only when the join makes
// the user a member. A join that arrives before its activity's created event
// is kept by the chat service as pending and applied, with its notice, when
// the group is created; nothing is retried. A join older than the user's
// latest leave changes nothing and sends no notice.
func (h *Handlers) ActivityMemberJoined(ctx context.Context, ev *activityv1.ActivityMemberJoined, _ eventbus.Meta) error {
	res, err := h.chat.AddGroupMember(ctx, connect.NewRequest(&chatv1.AddGroupMemberRequest{
		ActivityId:           ev.GetActivityId(),
		UserId:               ev.GetUserId(),
		EventTime:            ev.GetJoinedAt(),
		NoticeText:           memberNoticeText(h.joined, ev.GetActivityId(), ev.GetUserId()),
		NoticeIdempotencyKey: JoinedNoticeKey(ev),
	}))
	if err != nil {
		return Classify("AddGroupMember", err, false)
	}
	h.logMembership(ctx, "join", ev.GetActivityId(), ev.GetUserId(), res.Msg.GetApplied(), res.Msg.GetPending())
	return nil
}

// logMembership logs, at debug level, what a join or leave did. The line is
// built only when debug is enabled, as it seldom is on the hot path.
func (h *Handlers) logMembership(ctx context.Context, kind, activityID, userID string, applied, pending bool) {
	if !h.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	outcome := "applied"
	switch {
	case pending:
		outcome = "pending until the group is created"
	case !applied:
		outcome = "no change: a later event decides"
	}
	h.log.DebugContext(ctx, kind+" "+outcome, slog.String("activity_id", activityID), slog.String("user_id", userID))
}
