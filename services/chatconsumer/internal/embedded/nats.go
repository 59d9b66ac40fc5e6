// Package embedded runs, inside the consumer's process, the NATS server and
// the chat service that dev mode needs, so that one command starts a whole
// stack whose data survives restarts.
package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/activitychat/chat/services/chatconsumer/internal/config"
)

// NATS is a running embedded NATS server with JetStream.
type NATS struct {
	srv *server.Server
}

// StartNATS starts a NATS server with JetStream on a file store in
// cfg.StoreDir, listening on cfg.Listen (port -1 picks a free port) and, when
// cfg.HttpListen is set, serving monitoring (/healthz, /varz, /jsz) there.
//
// The store's sync policy is cfg.Sync. nats-server flushes its file store
// every 2 minutes by default, so a power failure can lose writes it has
// already acknowledged; config.SyncInterval shortens that window to
// cfg.SyncInterval (1s by default) at almost no cost, and config.SyncAlways
// closes it by flushing before every acknowledgement, at a cost in publish
// throughput (see the package benchmarks). A crash of the process alone loses
// nothing under either policy: the operating system still holds the writes.
func StartNATS(name string, cfg config.EmbeddedNats, log *slog.Logger) (*NATS, error) {
	return StartNATSContext(context.Background(), name, cfg, log)
}

// StartNATSContext is StartNATS, returning when the server accepts
// connections, when it fails (a port in use fails at once, naming its key)
// or when ctx is done, with ctx's error.
func StartNATSContext(ctx context.Context, name string, cfg config.EmbeddedNats, log *slog.Logger) (*NATS, error) {
	host, port, err := config.ListenPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: Listen %q: %w", cfg.Listen, err)
	}
	// nats-server reports a port in use only in its log; find out first,
	// so that the error names the key.
	if err := CheckListen("Embedded.Nats.Listen", cfg.Listen); err != nil {
		return nil, err
	}
	if cfg.HttpListen != "" {
		if err := CheckListen("Embedded.Nats.HttpListen", cfg.HttpListen); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	opts := &server.Options{
		ServerName:   name,
		Host:         host,
		Port:         port,
		JetStream:    true,
		StoreDir:     cfg.StoreDir,
		SyncInterval: cfg.SyncInterval,
		SyncAlways:   cfg.Sync == config.SyncAlways,
		NoSigs:       true,
	}
	if cfg.HttpListen != "" {
		if opts.HTTPHost, opts.HTTPPort, err = config.ListenPort(cfg.HttpListen); err != nil {
			return nil, fmt.Errorf("embedded nats: HttpListen %q: %w", cfg.HttpListen, err)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nl := &natsLogger{log: log.With(slog.String("component", "nats-server")), fatal: make(chan string, 1)}
	srv.SetLoggerV2(nl, false, false, false)
	srv.Start()
	deadline := time.Now().Add(natsStartTimeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-nl.fatal:
			srv.Shutdown()
			return nil, fmt.Errorf("embedded nats: %s", msg)
		case <-ctx.Done():
			srv.Shutdown()
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			return nil, fmt.Errorf("embedded nats: not ready within %s", natsStartTimeout)
		}
	}
	return &NATS{srv: srv}, nil
}

// natsStartTimeout bounds how long StartNATS waits for the server, which
// recovers its JetStream store before it accepts connections.
const natsStartTimeout = 2 * time.Minute

// ClientURL returns the URL clients connect to.
func (n *NATS) ClientURL() string { return n.srv.ClientURL() }

// MonitorURL returns the monitoring base URL, or "" when monitoring is off.
func (n *NATS) MonitorURL() string {
	if addr := n.srv.MonitorAddr(); addr != nil {
		return "http://" + addr.String()
	}
	return ""
}

// Server returns the underlying server.
func (n *NATS) Server() *server.Server { return n.srv }

// Shutdown stops the server and waits until it has stopped, flushing the
// store.
func (n *NATS) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// natsLogger sends nats-server's log to slog. Notices become debug lines,
// as the server is chatty at start. The server reports a failure to listen
// as fatal and then waits for ever; fatal passes it on to StartNATS.
type natsLogger struct {
	log   *slog.Logger
	fatal chan string
}

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	select {
	case l.fatal <- msg:
	default:
		l.log.Error(msg)
	}
}
func (l *natsLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any) {}
