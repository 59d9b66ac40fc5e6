package chatserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
)

// TestFutureEventTime: an event time more than the skew bound (24 h by
// default) ahead of the clock is invalid_argument in every RPC that takes
// one, so a join dated 9999 cannot freeze a user's membership: the later
// real leave still applies.
func TestFutureEventTime(t *testing.T) {
	ctx := context.Background()
	client := newClient(startServer(t, testConfig(backends[0].database(t))), "")
	group, err := client.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{ActivityId: "act_1", OwnerId: "owner", Name: "n"}))
	if err != nil {
		t.Fatal(err)
	}
	groupID := group.Msg.GetGroup().GetGroupId()
	wantEventTimeInvalid := func(t *testing.T, err error) {
		t.Helper()
		wantCode(t, err, connect.CodeInvalidArgument)
		var ce *connect.Error
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Message(), "event_time: is ") || !strings.Contains(ce.Message(), "ahead of the clock") {
			t.Errorf("error %v does not say event_time is ahead of the clock", err)
		}
	}
	for _, future := range []time.Time{
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Now().Add(25 * time.Hour),
	} {
		ts := timestamppb.New(future)
		t.Run(future.Format(time.DateOnly), func(t *testing.T) {
			_, err := client.AddGroupMember(ctx, connect.NewRequest(&chatv1.AddGroupMemberRequest{GroupId: groupID, UserId: "user_1", EventTime: ts}))
			wantEventTimeInvalid(t, err)
			_, err = client.RemoveGroupMember(ctx, connect.NewRequest(&chatv1.RemoveGroupMemberRequest{GroupId: groupID, UserId: "user_1", EventTime: ts}))
			wantEventTimeInvalid(t, err)
			_, err = client.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{ActivityId: "act_2", OwnerId: "owner", Name: "n", EventTime: ts}))
			wantEventTimeInvalid(t, err)
		})
	}

	// Within the bound a clock a little ahead is fine, and the real leave
	// after it applies.
	soon := time.Now().Add(time.Hour)
	add, err := client.AddGroupMember(ctx, connect.NewRequest(&chatv1.AddGroupMemberRequest{GroupId: groupID, UserId: "user_1", EventTime: timestamppb.New(soon)}))
	if err != nil || !add.Msg.GetApplied() {
		t.Fatalf("join 1 h ahead = %v, %v; want applied", add, err)
	}
	leave, err := client.RemoveGroupMember(ctx, connect.NewRequest(&chatv1.RemoveGroupMemberRequest{GroupId: groupID, UserId: "user_1", EventTime: timestamppb.New(soon.Add(time.Second))}))
	if err != nil || !leave.Msg.GetApplied() || leave.Msg.GetIsMember() {
		t.Fatalf("leave after it = %v, %v; want applied", leave, err)
	}
}
