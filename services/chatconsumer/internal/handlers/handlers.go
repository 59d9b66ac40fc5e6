// Package handlers turns activity events into ChatService calls.
//
// Each handler is idempotent: every chat write it makes is idempotent by
// itself (CreateGroup by activity, membership by event time, notices by an
// idempotency key derived from the event), so an event delivered twice, or
// republished, changes nothing the second time. Errors are classified for
// the eventbus runtime: see Classify.
//
// A join or leave costs one chat call: it names the group by activity and
// carries its notice, which the chat service stores in the transaction of
// the membership change exactly when the change applies. A join or leave
// that arrives before its activity's group exists is kept by the chat
// service and applied when the group is created, so the handlers never wait
// for the created event.
package handlers

import (
	"log/slog"

	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
)

// Notices holds the texts of the system notices. In each text,
// {activity_id}, {user_id}, {title} and {group_name} are replaced by the
// event's values ({title} and {group_name} are both the group's name).
type Notices struct {
	// Created is sent to the creator when the activity's group is created.
	Created string
	// Joined is sent to a user who joined the group.
	Joined string
	// Left is sent to a user who left the group.
	Left string
}

// maxNoticeRunes is the longest notice the chat service accepts.
const maxNoticeRunes = 4000

// Handlers handles the activity events by calling the chat service. It
// implements the generated activityv1.ActivityEventsHandler, one method per
// event of proto/activity/v1/events.proto: create it with New and register
// it with activityv1.RegisterActivityEvents, whose signature makes a
// missing method a compile error.
type Handlers struct {
	chat                  chatv1connect.ChatServiceClient
	created, joined, left noticeTemplate
	log                   *slog.Logger
}

// New returns handlers that call chat, which should be made with NewClient
// so that calls carry the token, the trace context and a timeout.
func New(chat chatv1connect.ChatServiceClient, notices Notices, log *slog.Logger) *Handlers {
	if log == nil {
		log = slog.Default()
	}
	return &Handlers{
		chat:    chat,
		created: compileNotice(notices.Created),
		joined:  compileNotice(notices.Joined),
		left:    compileNotice(notices.Left),
		log:     log,
	}
}

// memberNoticeText fills a join or leave notice template with the event's
// values. The group's name is not known here, as the group may not exist
// yet: {title} and {group_name} are left as {group_name}, which the chat
// service fills when it stores the notice.
func memberNoticeText(template noticeTemplate, activityID, userID string) string {
	return noticeText(template, activityID, userID, "{group_name}")
}

// noticeText fills a notice template and cuts it to the longest text the
// chat service stores.
func noticeText(template noticeTemplate, activityID, userID, groupName string) string {
	return template.fill(&[len(noticeFields)]string{activityID, userID, groupName, groupName})
}
