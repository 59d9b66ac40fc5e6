package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"

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
// cfg.ListenOn (port 0 picks a free port); see StartChatContext.
func StartChat(cfg config.EmbeddedChat, token string, log *slog.Logger, reg *prometheus.Registry) (*Chat, error) {
	return StartChatContext(context.Background(), cfg, token, log, reg)
}

// StartChatContext starts the chat service on cfg.Database, serving Connect
// on cfg.ListenOn (port 0 picks a free port). It binds the port before it
// opens the database, so a port in use fails at once, and gives up opening
// the database when ctx is done. A non-empty token is required as a bearer
// token from clients. The service's metrics go to reg when it is not nil.
// Its per-call log lines are kept only at debug level, since the consumer
// logs one line per event already.
func StartChatContext(ctx context.Context, cfg config.EmbeddedChat, token string, log *slog.Logger, reg *prometheus.Registry) (*Chat, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ccfg := chatserver.Config{
		Name:     "chat.rpc",
		ListenOn: cfg.ListenOn,
		Mode:     chatserver.ModeDev,
		Database: chatserver.DatabaseConfig{Driver: cfg.Database.Driver, DSN: cfg.Database.DSN},
		Log:      chatserver.LogConfig{Level: "info", Encoding: "text"},
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
	if err := ccfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded chat: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.ListenOn)
	if err != nil {
		return nil, &ListenError{Key: "Embedded.Chat.ListenOn", Addr: cfg.ListenOn, Err: err}
	}
	srv, err := chatserver.NewContext(ctx, ccfg, chatLog, opts...)
	if err != nil {
		_ = ln.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("embedded chat: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	c := &Chat{srv: srv, ln: ln, cancel: cancel, served: make(chan error, 1)}
	go func() { c.served <- srv.Serve(sctx, ln) }()
	return c, nil
}

// ListenError is a failure to listen on a configured address.
type ListenError struct {
	// Key is the configuration key of the address, such as
	// "Embedded.Chat.ListenOn".
	Key string
	// Addr is the address.
	Addr string
	// Err is the error of the listen call.
	Err error
}

// Error names the key and the address, and says when the address is in
// use.
func (e *ListenError) Error() string {
	if e.InUse() {
		return fmt.Sprintf("%s: %s is already in use (is another chatconsumer, nats-server or chat service running?)", e.Key, e.Addr)
	}
	return fmt.Sprintf("%s: cannot listen on %s: %v", e.Key, e.Addr, e.Err)
}

// Unwrap returns Err.
func (e *ListenError) Unwrap() error { return e.Err }

// InUse reports whether the address is in use by another process.
func (e *ListenError) InUse() bool { return errors.Is(e.Err, syscall.EADDRINUSE) }

// CheckListen listens on addr and closes the listener again, to find out
// before anything starts whether the address is free. Ports 0 and -1, which
// pick a free port, are always free.
func CheckListen(key, addr string) error {
	if _, port, err := config.ListenPort(addr); err == nil && port <= 0 {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return &ListenError{Key: key, Addr: addr, Err: err}
	}
	return ln.Close()
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
