package chatserver_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"connectrpc.com/connect"

	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/services/chat/chatserver"
	"github.com/activitychat/chat/services/chat/store"
	"github.com/activitychat/chat/services/chat/store/storetest"
)

// backend is a store the server tests run against.
type backend struct {
	name     string
	database func(tb testing.TB) chatserver.DatabaseConfig
}

var backends = []backend{
	{"sqlite", func(tb testing.TB) chatserver.DatabaseConfig {
		return chatserver.DatabaseConfig{Driver: store.DriverSQLite, DSN: filepath.Join(tb.TempDir(), "chat.db")}
	}},
	{"postgres", func(tb testing.TB) chatserver.DatabaseConfig {
		return chatserver.DatabaseConfig{Driver: store.DriverPostgres, DSN: storetest.PostgresDSN(tb)}
	}},
}

// forEachBackend runs test once per backend, as subtests.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

// testConfig returns a valid dev config on db.
func testConfig(db chatserver.DatabaseConfig, tokens ...string) chatserver.Config {
	return chatserver.Config{
		Name:     "chat.test",
		ListenOn: "127.0.0.1:0",
		Mode:     chatserver.ModeDev,
		Database: db,
		Auth:     chatserver.AuthConfig{Tokens: tokens},
		Log:      chatserver.LogConfig{Level: "info", Encoding: "json"},
	}
}

// startServer builds a Server from cfg and serves its Handler with
// httptest; both are closed when the test ends.
func startServer(tb testing.TB, cfg chatserver.Config) *httptest.Server {
	tb.Helper()
	srv, err := chatserver.New(cfg, nil)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(ts.Close)
	return ts
}

// newClient returns a Connect client of ts that sends token, if any.
func newClient(ts *httptest.Server, token string, opts ...connect.ClientOption) chatv1connect.ChatServiceClient {
	if token != "" {
		opts = append(opts, connect.WithInterceptors(bearer(token)))
	}
	return chatv1connect.NewChatServiceClient(ts.Client(), ts.URL, opts...)
}

// bearer is a client interceptor that sends a bearer token.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}
}

// wantCode fails the test unless err is a Connect error with code.
func wantCode(tb testing.TB, err error, code connect.Code) {
	tb.Helper()
	if got := connect.CodeOf(err); err == nil || got != code {
		tb.Fatalf("err = %v (code %v), want code %v", err, got, code)
	}
}

// newHTTPTestServer serves srv's Handler and returns its URL; the caller
// closes srv.
func newHTTPTestServer(tb testing.TB, srv *chatserver.Server) string {
	tb.Helper()
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(ts.Close)
	return ts.URL
}
