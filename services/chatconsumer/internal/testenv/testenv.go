// Package testenv starts the in-process servers the consumer's tests run
// against: an embedded NATS server with JetStream on a temporary file store,
// and the real chat service on SQLite behind an httptest server that can be
// stopped and restarted on the same address to simulate an outage.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/services/chat/chatserver"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/chatconsumer/internal/embedded"
)

// Token is the bearer token the test chat service requires.
const Token = "test-token"

// Logger returns a logger for tests: to standard error when the
// CHATCONSUMER_TEST_LOG environment variable is set, discarded otherwise.
func Logger(t testing.TB) *slog.Logger {
	t.Helper()
	if os.Getenv("CHATCONSUMER_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// StartNATS starts an embedded NATS server with JetStream on a free port and
// a t.TempDir() store, stopped when t ends.
func StartNATS(t testing.TB) *embedded.NATS {
	t.Helper()
	n, err := embedded.StartNATS("test", config.EmbeddedNats{
		Listen:       "127.0.0.1:-1",
		StoreDir:     t.TempDir(),
		Sync:         config.SyncInterval,
		SyncInterval: time.Second,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

// Connect connects to url, closing the connection when t ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Chat is the real chat service on SQLite, served by httptest.
type Chat struct {
	t       testing.TB
	srv     *chatserver.Server
	handler http.Handler
	addr    string
	mu      sync.Mutex
	ts      *httptest.Server
	client  chatv1connect.ChatServiceClient
}

// StartChat starts the chat service on a SQLite file in t.TempDir(),
// requiring Token, and stops it when t ends.
func StartChat(t testing.TB) *Chat {
	t.Helper()
	return StartChatWrapped(t, nil)
}

// StartChatWrapped is StartChat with the service's handler wrapped by wrap,
// for tests that inject failures or delays in front of the real service.
func StartChatWrapped(t testing.TB, wrap func(http.Handler) http.Handler) *Chat {
	t.Helper()
	return startChat(t, chatserver.DatabaseConfig{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "chat.db")}, wrap)
}

// StartChatOn is StartChat on the database db, for benchmarks that compare
// SQLite with PostgreSQL.
func StartChatOn(t testing.TB, db chatserver.DatabaseConfig) *Chat {
	t.Helper()
	return startChat(t, db, nil)
}

func startChat(t testing.TB, db chatserver.DatabaseConfig, wrap func(http.Handler) http.Handler) *Chat {
	t.Helper()
	srv, err := chatserver.New(chatserver.Config{
		Name:     "chat.rpc",
		ListenOn: "127.0.0.1:0",
		Mode:     chatserver.ModeDev,
		Database: db,
		Auth:     chatserver.AuthConfig{Tokens: []string{Token}},
		Log:      chatserver.LogConfig{Level: "warn", Encoding: "plain"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Chat{t: t, srv: srv, handler: srv.Handler()}
	if wrap != nil {
		c.handler = wrap(c.handler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.serve(ln)
	t.Cleanup(func() {
		c.Stop()
		_ = srv.Close()
	})
	c.client = chatv1connect.NewChatServiceClient(http.DefaultClient, c.URL(), connect.WithInterceptors(bearer{}))
	return c
}

func (c *Chat) serve(ln net.Listener) {
	ts := httptest.NewUnstartedServer(c.handler)
	ts.Listener = ln
	ts.Start()
	c.mu.Lock()
	c.ts = ts
	c.mu.Unlock()
}

// URL returns the service's base URL; it stays the same across Stop and
// Start.
func (c *Chat) URL() string { return "http://" + c.addr }

// Stop stops serving: calls fail with connection refused until Start.
func (c *Chat) Stop() {
	c.mu.Lock()
	ts := c.ts
	c.ts = nil
	c.mu.Unlock()
	if ts != nil {
		ts.CloseClientConnections()
		ts.Close()
	}
}

// Start serves again on the same address after Stop.
func (c *Chat) Start() {
	c.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", c.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("chat: listen again on %s: %v", c.addr, err)
	}
	c.serve(ln)
}

// Client returns a client of the service with Token.
func (c *Chat) Client() chatv1connect.ChatServiceClient { return c.client }

// Group returns the group of an activity, or nil when there is none.
func (c *Chat) Group(activityID string) *chatv1.Group {
	c.t.Helper()
	res, err := c.client.GetGroupByActivityId(context.Background(), connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{ActivityId: activityID}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return nil
	}
	if err != nil {
		c.t.Fatalf("GetGroupByActivityId(%s): %v", activityID, err)
	}
	return res.Msg.GetGroup()
}

// Members returns the user ids of an activity's current members, sorted, or
// nil when it has no group.
func (c *Chat) Members(activityID string) []string {
	c.t.Helper()
	g := c.Group(activityID)
	if g == nil {
		return nil
	}
	var out []string
	token := ""
	for {
		res, err := c.client.ListGroupMembers(context.Background(), connect.NewRequest(&chatv1.ListGroupMembersRequest{GroupId: g.GetGroupId(), PageSize: 1000, PageToken: token}))
		if err != nil {
			c.t.Fatalf("ListGroupMembers: %v", err)
		}
		for _, m := range res.Msg.GetMembers() {
			out = append(out, m.GetUserId())
		}
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	sort.Strings(out)
	return out
}

// Messages returns the messages of an activity's group, oldest first, or nil
// when it has no group.
func (c *Chat) Messages(activityID string) []*chatv1.Message {
	c.t.Helper()
	g := c.Group(activityID)
	if g == nil {
		return nil
	}
	var out []*chatv1.Message
	token := ""
	for {
		res, err := c.client.ListGroupMessages(context.Background(), connect.NewRequest(&chatv1.ListGroupMessagesRequest{GroupId: g.GetGroupId(), PageSize: 1000, PageToken: token}))
		if err != nil {
			c.t.Fatalf("ListGroupMessages: %v", err)
		}
		out = append(out, res.Msg.GetMessages()...)
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	return out
}

// bearer adds Token to the test client's calls.
type bearer struct{}

func (bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+Token)
		return next(ctx, req)
	}
}

func (bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// Config returns a consumer configuration for tests: NATS at natsURL, the
// chat service at chatURL with Token, operations on a free port, and a fast
// retry policy.
func Config(natsURL, chatURL string) *config.Config {
	cfg := config.Default()
	cfg.Name = "chat.consumer.test"
	cfg.Nats.Url = natsURL
	cfg.ChatRpc.Endpoint = chatURL
	cfg.ChatRpc.Token = Token
	cfg.ChatRpc.Timeout = 2 * time.Second
	cfg.Messaging.MetricsListenOn = "127.0.0.1:0"
	cfg.Messaging.AckWait = 5 * time.Second
	cfg.Messaging.DrainTimeout = 5 * time.Second
	initial, maxInterval, hold := 50*time.Millisecond, time.Second, time.Minute
	cfg.Messaging.Retry.InitialInterval = &initial
	cfg.Messaging.Retry.MaxInterval = &maxInterval
	cfg.Messaging.Retry.MaxHold = &hold
	return &cfg
}
