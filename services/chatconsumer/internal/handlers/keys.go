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
	return memberNoticeKey(activityv1.ActivityMemberJoinedSubject, ev.GetActivityId(), ev.GetUserId(), ev.GetJoinedAt())
}

// LeftNoticeKey returns the idempotency key of the notice for one leave:
// "activity.member.left:<activity_id>:<user_id>:<left_at>".
func LeftNoticeKey(ev *activityv1.ActivityMemberLeft) string {
	return memberNoticeKey(activityv1.ActivityMemberLeftSubject, ev.GetActivityId(), ev.GetUserId(), ev.GetLeftAt())
}

// memberNoticeKey builds "<subject>:<activity_id>:<user_id>:<time>" in one
// allocation, the time formatted canonically, so that the JSON and binary
// forms of one event, or two JSON spellings of one instant, share a key.
func memberNoticeKey(subject, activityID, userID string, at *timestamppb.Timestamp) string {
	var buf [200]byte
	b := append(buf[:0], subject...)
	b = append(b, ':')
	b = append(b, activityID...)
	b = append(b, ':')
	b = append(b, userID...)
	b = append(b, ':')
	b = at.AsTime().UTC().AppendFormat(b, time.RFC3339Nano)
	return string(b)
}
