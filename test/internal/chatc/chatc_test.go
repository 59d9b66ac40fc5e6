package chatc_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/test/internal/chatc"
	"github.com/activitychat/chat/test/internal/harness"
	"github.com/activitychat/chat/test/internal/images"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// TestRunChat starts the chat service on SQLite, writes a group over
// Connect from the host, restarts the container and reads the group back at
// the new port: the data outlives a stop, which scenario 4 relies on.
func TestRunChat(t *testing.T) {
	ctx := harness.Deadline(t, 4*time.Minute)
	img, err := images.Chat(ctx)
	if errors.Is(err, images.ErrNoDockerfile) {
		harness.Require(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}

	done := harness.Step(t, "start chat")
	chat, err := chatc.RunChat(ctx, img)
	harness.Cleanup(t, "chat", chat)
	if err != nil {
		t.Fatal(err)
	}
	done()

	cli, err := chat.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cli.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{
		ActivityId: "act_123456", OwnerId: "user_789", Name: "周末爬山活动",
	}))
	if err != nil {
		t.Fatal(err)
	}

	done = harness.Step(t, "stop and start chat")
	timeout := 10 * time.Second
	if err := chat.Stop(ctx, &timeout); err != nil {
		t.Fatal(err)
	}
	if err := chat.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done()

	cli, err = chat.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cli.GetGroupByActivityId(ctx, connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{ActivityId: "act_123456"}))
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if got.Msg.GetGroup().GetGroupId() != res.Msg.GetGroup().GetGroupId() {
		t.Fatalf("after the restart: group %v, want %v", got.Msg.GetGroup(), res.Msg.GetGroup())
	}

	// A call without the token is refused.
	u, _ := chat.URL(ctx)
	_, err = chatc.NewClient(u, "").GetGroupByActivityId(ctx, connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{ActivityId: "act_123456"}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("call without a token: %v, want unauthenticated", err)
	}
}
