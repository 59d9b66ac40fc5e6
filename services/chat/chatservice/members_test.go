package chatservice

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/services/chat/store"
)

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := store.Open(context.Background(), store.DriverSQLite, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, nil)
}

// TestMembershipTarget checks that a membership call names its group by
// group_id (as old clients do) or by activity_id, and not both or neither.
func TestMembershipTarget(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	at := timestamppb.New(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC))

	res, err := s.AddGroupMember(ctx, connect.NewRequest(&chatv1.AddGroupMemberRequest{
		ActivityId: "act_1", UserId: "u1", EventTime: at, NoticeText: "welcome to {group_name}", NoticeIdempotencyKey: "k1",
	}))
	if err != nil || !res.Msg.GetPending() || res.Msg.GetApplied() {
		t.Fatalf("AddGroupMember before the group = %v, %v; want pending", res, err)
	}
	created, err := s.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{ActivityId: "act_1", OwnerId: "owner", Name: "Hike"}))
	if err != nil || created.Msg.GetGroup().GetMemberCount() != 2 {
		t.Fatalf("CreateGroup = %v, %v; want the pending member applied", created, err)
	}
	gid := created.Msg.GetGroup().GetGroupId()

	// An old client: group_id, no notice.
	rm, err := s.RemoveGroupMember(ctx, connect.NewRequest(&chatv1.RemoveGroupMemberRequest{GroupId: gid, UserId: "u1", EventTime: at}))
	if err != nil || !rm.Msg.GetApplied() || rm.Msg.GetNoticeStored() {
		t.Errorf("RemoveGroupMember by group id = %v, %v; want applied at the join's time, no notice", rm, err)
	}
	msgs, err := s.ListGroupMessages(ctx, connect.NewRequest(&chatv1.ListGroupMessagesRequest{GroupId: gid}))
	if err != nil || len(msgs.Msg.GetMessages()) != 1 || msgs.Msg.GetMessages()[0].GetText() != "welcome to Hike" {
		t.Errorf("messages = %v, %v; want the pending join's notice", msgs, err)
	}

	for name, req := range map[string]*chatv1.AddGroupMemberRequest{
		"neither": {UserId: "u2", EventTime: at},
		"both":    {GroupId: gid, ActivityId: "act_1", UserId: "u2", EventTime: at},
	} {
		if _, err := s.AddGroupMember(ctx, connect.NewRequest(req)); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("%s: err = %v, want invalid_argument", name, err)
		}
	}
	if _, err := s.RemoveGroupMember(ctx, connect.NewRequest(&chatv1.RemoveGroupMemberRequest{GroupId: "grp_missing", UserId: "u2", EventTime: at})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("a missing group id: err = %v, want not_found", err)
	}
}
