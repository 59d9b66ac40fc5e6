package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitychat/chat/services/chat/chatserver"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
)

// Chat is a running embedded chat service.
type Chat struct {
	srv    *chatserver.Server
	ln     net.Listener
	cancel context.CancelFunc
	served chan error
}

// StartChat starts the chat service on cfg.Database, serving Connect on
// cfg.ListenOn (port 0 picks a free port). A non-empty token is required as
// a bearer token from clients. The service's metrics go to reg when it is
// not nil. Its per-call log lines are kept only at debug level, since the
// consumer logs one line per event already.
func StartChat(cfg config.EmbeddedChat, token string, log *slog.Logger, reg *prometheus.Registry) (*Chat, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ccfg := chatserver.Config{
		Name:     "chat.rpc",
		ListenOn: cfg.ListenOn,
		Mode:     chatserver.ModeDev,
		Database: chatserver.DatabaseConfig{Driver: cfg.Database.Driver, DSN: cfg.Database.DSN},
		Log:      chatserver.LogConfig{Level: "info", Encoding: "plain"},
	}
	if token != "" {
		ccfg.Auth.Tokens = []string{token}
	}
	var opts []chatserver.Option
	if reg != nil {
		opts = append(opts, chatserver.WithRegistry(reg))
	}
	chatLog := slog.New(&minLevel{Handler: log.Handler(), min: slog.LevelWarn}).With(slog.String("component", "chat"))
	if log.Enabled(context.Background(), slog.LevelDebug) {
		chatLog = log.With(slog.String("component", "chat"))
	}
	srv, err := chatserver.New(ccfg, chatLog, opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded chat: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.ListenOn)
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("embedded chat: Embedded.Chat.ListenOn: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Chat{srv: srv, ln: ln, cancel: cancel, served: make(chan error, 1)}
	go func() { c.served <- srv.Serve(ctx, ln) }()
	return c, nil
}

// URL returns the service's base URL.
func (c *Chat) URL() string { return "http://" + c.ln.Addr().String() }

// Shutdown stops serving, waits for calls in flight until ctx is done and
// closes the database.
func (c *Chat) Shutdown(ctx context.Context) error {
	c.cancel()
	var err error
	select {
	case err = <-c.served:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if cerr := c.srv.Close(); err == nil {
		err = cerr
	}
	return err
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h *minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h *minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h *minLevel) WithGroup(name string) slog.Handler {
	return &minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
