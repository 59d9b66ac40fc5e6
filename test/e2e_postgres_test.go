package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/activitychat/chat/test/internal/chatc"
	"github.com/activitychat/chat/test/internal/harness"
	"github.com/activitychat/chat/test/internal/natsc"
	"github.com/activitychat/chat/test/internal/pgtest"
)

// TestPostgres is scenario 2: the seed's flows with the chat service on
// PostgreSQL, in a schema of its own in the database of .ci/postgres.
//
// No PostgreSQL image can be pulled, so the server is the host's, on
// 127.0.0.1:5432. Containers cannot reach the host's loopback, so the chat
// service and the consumer run in the host's network, on free loopback
// ports, and reach NATS at its published loopback port: all traffic stays
// on 127.0.0.1.
func TestPostgres(t *testing.T) {
	imgs := requireImages(t)
	dsn := pgtest.Schema(t)
	ctx := harness.Deadline(t, 3*time.Minute)
	defer harness.Step(t, "scenario 2")()

	n, err := natsc.Run(ctx, imgs.NATS)
	harness.Cleanup(t, "nats", n)
	if err != nil {
		t.Fatal(err)
	}
	natsURL, err := n.ClientURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	natsURL = strings.Replace(natsURL, "localhost", "127.0.0.1", 1)

	chatPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	chat, err := chatc.RunChat(ctx, imgs.Chat, chatc.WithPostgres(dsn), chatc.WithChatHostNetwork(chatPort))
	harness.Cleanup(t, "chat", chat)
	if err != nil {
		t.Fatal(err)
	}

	metricsPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := chatc.RunConsumer(ctx, imgs.Consumer,
		chatc.WithNATS(natsURL),
		chatc.WithChat(chat.InternalURL()),
		chatc.WithConsumerHostNetwork(metricsPort),
	)
	harness.Cleanup(t, "chatconsumer", consumer)
	if err != nil {
		t.Fatal(err)
	}

	s := &stack{Images: imgs, NATS: n, Chat: chat, Consumers: []*chatc.Consumer{consumer}}
	seedFlows(t, ctx, s, "pg")

	tables, err := pgtest.Tables(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatal("the chat service's schema in PostgreSQL has no tables: it did not store there")
	}
	t.Logf("the chat service's schema in PostgreSQL has tables %v", tables)
}
