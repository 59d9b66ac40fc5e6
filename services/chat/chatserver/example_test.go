package chatserver_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"

	"connectrpc.com/connect"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/services/chat/chatserver"
)

// The server embedded in another program: its Handler served in process,
// here by httptest, and called with the generated Connect client.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "chat-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg, err := chatserver.Parse([]byte(`
ListenOn: 127.0.0.1:0
Mode: dev
Database:
  Driver: sqlite
  DSN: ` + filepath.Join(dir, "chat.db") + `
`))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := chatserver.New(cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	client := chatv1connect.NewChatServiceClient(ts.Client(), ts.URL)
	for range 2 {
		res, err := client.CreateGroup(context.Background(), connect.NewRequest(&chatv1.CreateGroupRequest{
			ActivityId: "act_123456", OwnerId: "user_789", Name: "Weekend hike",
		}))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("created:", res.Msg.GetCreated(), "members:", res.Msg.GetGroup().GetMemberCount())
	}
	// Output:
	// created: true members: 1
	// created: false members: 1
}
