package handlers_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/chatconsumer/internal/handlers"
	"github.com/activitychat/chat/services/chatconsumer/internal/testenv"
)

// BenchmarkHandlers calls the real handlers, with the client the consumer
// makes, against the real chat service on SQLite in this process, one event
// at a time: ns/op is one event's handling, chat call included, and
// allocs/op counts both sides of the call. Each created event makes a new
// group, each join adds a new member to one of them, and each leave removes
// a member that a join added.
func BenchmarkHandlers(b *testing.B) {
	chat := testenv.StartChat(b)
	h := handlers.New(handlers.NewClient(handlers.ClientConfig{
		Endpoint: chat.URL(), Token: testenv.Token, Timeout: 5 * time.Second,
	}), handlers.Notices{
		Created: config.DefaultCreatedNotice, Joined: config.DefaultJoinedNotice, Left: config.DefaultLeftNotice,
	}, testenv.Logger(b))
	ctx := eventbus.ContextWithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	at := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	const groups = 16
	for g := range groups {
		if err := h.ActivityCreated(ctx, &activityv1.ActivityCreated{
			ActivityId: "act_" + strconv.Itoa(g), CreatorId: "owner", Title: "Hiking", CreatedAt: timestamppb.New(at),
		}, eventbus.Meta{}); err != nil {
			b.Fatal(err)
		}
	}
	created, joined, left := 0, 0, 0
	b.Run("created", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			created++
			ev := &activityv1.ActivityCreated{
				ActivityId: "new_" + strconv.Itoa(created), CreatorId: "owner", Title: "Hiking", CreatedAt: timestamppb.New(at),
			}
			if err := h.ActivityCreated(ctx, ev, eventbus.Meta{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("joined", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			joined++
			ev := &activityv1.ActivityMemberJoined{
				ActivityId: "act_" + strconv.Itoa(joined%groups), UserId: "u" + strconv.Itoa(joined),
				JoinedAt: timestamppb.New(at.Add(time.Second)),
			}
			if err := h.ActivityMemberJoined(ctx, ev, eventbus.Meta{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("left", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			// Past the users the joins added, a leave is one of a user
			// who never was a member: the same call, with no notice.
			left++
			ev := &activityv1.ActivityMemberLeft{
				ActivityId: "act_" + strconv.Itoa(left%groups), UserId: "u" + strconv.Itoa(left),
				LeftAt: timestamppb.New(at.Add(2 * time.Second)),
			}
			if err := h.ActivityMemberLeft(ctx, ev, eventbus.Meta{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJoinedNoticeKey measures the idempotency key of a join's notice,
// built for every join.
func BenchmarkJoinedNoticeKey(b *testing.B) {
	ev := &activityv1.ActivityMemberJoined{
		ActivityId: "act_1", UserId: "u_2", JoinedAt: timestamppb.New(time.Date(2024, 1, 1, 10, 0, 0, 123000000, time.UTC)),
	}
	b.ReportAllocs()
	for b.Loop() {
		if handlers.JoinedNoticeKey(ev) == "" {
			b.Fatal("no key")
		}
	}
}
