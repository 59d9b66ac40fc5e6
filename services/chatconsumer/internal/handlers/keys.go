package handlers

import (
	"time"

	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The idempotency keys of notices are derived from the event, never from
// its delivery, so that a redelivered or republished event sends no second
// notice while a later join after a leave sends a new one. The longest key,
// a join with two 64-character ids, is 183 characters, within the chat
// service's limit of 200.

// CreatedNoticeKey returns the idempotency key of the notice for an
// activity's creation: one per activity, as an activity has one group.
func CreatedNoticeKey(ev *activityv1.ActivityCreated) string {
	return activityv1.ActivityCreatedSubject + ":" + ev.GetActivityId()
}

// JoinedNoticeKey returns the idempotency key of the notice for one join:
// "activity.member.joined:<activity_id>:<user_id>:<joined_at>".
func JoinedNoticeKey(ev *activityv1.ActivityMemberJoined) string {
	return activityv1.ActivityMemberJoinedSubject + ":" + ev.GetActivityId() + ":" + ev.GetUserId() + ":" + stamp(ev.GetJoinedAt())
}

// LeftNoticeKey returns the idempotency key of the notice for one leave:
// "activity.member.left:<activity_id>:<user_id>:<left_at>".
func LeftNoticeKey(ev *activityv1.ActivityMemberLeft) string {
	return activityv1.ActivityMemberLeftSubject + ":" + ev.GetActivityId() + ":" + ev.GetUserId() + ":" + stamp(ev.GetLeftAt())
}

// stamp formats an event time canonically, so that the JSON and binary
// forms of one event, or two JSON spellings of one instant, share a key.
func stamp(ts *timestamppb.Timestamp) string {
	return ts.AsTime().UTC().Format(time.RFC3339Nano)
}
