// Package app assembles the chat consumer: in dev mode the embedded NATS
// server and chat service, then the NATS connection, the eventbus router with
// the handlers, and the operations server (/metrics, /healthz, /readyz).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/activitychat/chat/contracts/eventbus"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/chatconsumer/internal/embedded"
	"github.com/activitychat/chat/services/chatconsumer/internal/handlers"
	"github.com/activitychat/chat/services/internal/logging"
)

// Options adjust Start for tests and tools; the zero value is what the
// binary uses.
type Options struct {
	// Logger receives the log; nil means a logger made by NewLogger on
	// standard error.
	Logger *slog.Logger
	// Registry receives the metrics; nil means a new registry with the Go
	// and process collectors.
	Registry *prometheus.Registry
}

// Endpoints are the addresses a started App serves or uses.
type Endpoints struct {
	// NATS is the NATS URL the consumer uses (the embedded server's in dev
	// mode), without credentials.
	NATS string
	// NATSMonitor is the embedded NATS server's monitoring URL, or "".
	NATSMonitor string
	// Chat is the chat service's base URL (the embedded service's in dev
	// mode), without credentials.
	Chat string
	// Ops is the base URL of /metrics, /healthz and /readyz, or "" when the
	// operations server is off.
	Ops string
	// DataDir is where the embedded services keep their data, or "".
	DataDir string
}

// App is an assembled chat consumer. Start it, Run it, and it closes itself
// when Run returns.
type App struct {
	cfg      *config.Config
	log      *slog.Logger
	registry *prometheus.Registry

	nats   *embedded.NATS
	chat   *embedded.Chat
	nc     *nats.Conn
	js     jetstream.JetStream
	router *eventbus.Router
	ops    *opsServer
	ends   Endpoints

	closeOnce sync.Once
}

// Start is StartContext with a context that is never done.
func Start(cfg *config.Config, opts Options) (*App, error) {
	return StartContext(context.Background(), cfg, opts)
}

// StartContext starts what cfg asks for except consumption: the embedded
// services, the NATS connection and the operations server. Run then
// consumes. On error everything started is stopped again.
//
// Every address cfg listens on is tried first, so that a port in use fails
// at once, before anything starts, with an error naming the address, its
// key and how to move it. Every wait (the embedded NATS server's store, the
// chat database, NATS becoming reachable) ends when ctx is done, and
// StartContext then returns ctx's error.
func StartContext(ctx context.Context, cfg *config.Config, opts Options) (_ *App, err error) {
	a := &App{cfg: cfg, log: opts.Logger, registry: opts.Registry}
	if a.log == nil {
		a.log = logging.New(os.Stderr, cfg.Log.Level, logging.DefaultEncoding(cfg.Mode)).With(slog.String("app", cfg.Name))
	}
	if a.registry == nil {
		a.registry = prometheus.NewRegistry()
		a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	defer func() {
		if err != nil {
			a.Close()
		}
		var le *embedded.ListenError
		if errors.As(err, &le) {
			err = fmt.Errorf("%w; %s", err, cfg.Hint(le.Key))
		}
	}()
	if err := checkPorts(cfg); err != nil {
		return nil, err
	}
	for _, w := range Warnings(cfg) {
		a.log.Warn(w)
	}

	natsURL, chatURL := cfg.NatsURL(), cfg.ChatEndpoint()
	if cfg.Embedded.Nats.Enabled {
		if a.nats, err = embedded.StartNATSContext(ctx, cfg.Name, cfg.Embedded.Nats, a.log); err != nil {
			return nil, err
		}
		natsURL = a.nats.ClientURL()
		a.ends.NATSMonitor = a.nats.MonitorURL()
		a.ends.DataDir = cfg.Embedded.DataDir
	}
	if cfg.Embedded.Chat.Enabled {
		if a.chat, err = embedded.StartChatContext(ctx, cfg.Embedded.Chat, cfg.ChatRpc.Token, a.log, a.registry); err != nil {
			return nil, err
		}
		chatURL = a.chat.URL()
		a.ends.DataDir = cfg.Embedded.DataDir
	}
	a.ends.NATS, a.ends.Chat = config.RedactURLs(natsURL), config.RedactURLs(chatURL)

	if a.nc, err = connectWaiting(ctx, natsURL, cfg, a.log); err != nil {
		return nil, err
	}
	if a.js, err = jetstream.New(a.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}

	client := handlers.NewClient(handlers.ClientConfig{
		Endpoint: chatURL,
		Token:    cfg.ChatRpc.Token,
		Timeout:  cfg.ChatRpc.Timeout,
		MaxConns: cfg.Messaging.Concurrency * 3,
	})
	h := handlers.New(client, handlers.Notices(cfg.Notices), a.log)
	var reg prometheus.Registerer
	if cfg.Messaging.EnableMetrics {
		reg = a.registry
	}
	a.router = NewRouter(a.js, cfg.Messaging, h, reg, a.log)

	if cfg.Messaging.MetricsListenOn != "" {
		var g prometheus.Gatherer
		if cfg.Messaging.EnableMetrics {
			g = a.registry
		}
		if a.ops, err = startOps(cfg.Messaging.MetricsListenOn, g, a.Ready); err != nil {
			return nil, err
		}
		a.ends.Ops = a.ops.URL()
	}
	return a, nil
}

// natsStartupWait is how long Start waits for NATS to become reachable, so
// that a consumer started together with its NATS server does not fail.
const natsStartupWait = 30 * time.Second

// connectWaiting connects to NATS, retrying for up to natsStartupWait or
// until ctx is done.
func connectWaiting(ctx context.Context, url string, cfg *config.Config, log *slog.Logger) (*nats.Conn, error) {
	deadline := time.Now().Add(natsStartupWait)
	for {
		nc, err := ConnectNATS(url, cfg.Name, cfg.Nats, log)
		if err == nil || errors.Is(err, nats.ErrAuthorization) {
			return nc, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (gave up after %s; check Nats.Url and that NATS runs)", err, natsStartupWait)
		}
		log.Warn("NATS not reachable yet; retrying", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// checkPorts tries every address cfg listens on and reports each one that
// cannot be used, with what to change.
func checkPorts(cfg *config.Config) error {
	var msgs []string
	for _, l := range listenAddrs(cfg) {
		if err := embedded.CheckListen(l.key, l.addr); err != nil {
			msgs = append(msgs, fmt.Sprintf("%v; %s", err, cfg.Hint(l.key)))
		}
	}
	switch len(msgs) {
	case 0:
		return nil
	case 1:
		return errors.New(msgs[0])
	}
	return fmt.Errorf("%d listen addresses cannot be used:\n  %s", len(msgs), strings.Join(msgs, "\n  "))
}

type listenAddr struct{ key, addr string }

// listenAddrs lists the addresses cfg listens on.
func listenAddrs(cfg *config.Config) []listenAddr {
	var out []listenAddr
	if e := cfg.Embedded.Nats; e.Enabled {
		out = append(out, listenAddr{"Embedded.Nats.Listen", e.Listen})
		if e.HttpListen != "" {
			out = append(out, listenAddr{"Embedded.Nats.HttpListen", e.HttpListen})
		}
	}
	if e := cfg.Embedded.Chat; e.Enabled {
		out = append(out, listenAddr{"Embedded.Chat.ListenOn", e.ListenOn})
	}
	if m := cfg.Messaging.MetricsListenOn; m != "" {
		out = append(out, listenAddr{"Messaging.MetricsListenOn", m})
	}
	return out
}

// Warnings lists what in cfg is allowed but probably a mistake: an embedded
// service listening beyond loopback, where it has no authentication.
func Warnings(cfg *config.Config) []string {
	var out []string
	if e := cfg.Embedded.Nats; e.Enabled {
		if !loopback(e.Listen) {
			out = append(out, fmt.Sprintf("Embedded.Nats.Listen %s is not a loopback address: the embedded NATS server has no authentication, so anyone who can reach it can publish events, read them and replay dead letters; use 127.0.0.1 or an external NATS with credentials", e.Listen))
		}
		if e.HttpListen != "" && !loopback(e.HttpListen) {
			out = append(out, fmt.Sprintf("Embedded.Nats.HttpListen %s is not a loopback address: NATS monitoring has no authentication and shows connections and streams", e.HttpListen))
		}
	}
	if e := cfg.Embedded.Chat; e.Enabled && cfg.ChatRpc.Token == "" && !loopback(e.ListenOn) {
		out = append(out, fmt.Sprintf("Embedded.Chat.ListenOn %s is not a loopback address and ChatRpc.Token is empty: anyone who can reach it can call the chat service; set CHAT_TOKEN or listen on 127.0.0.1", e.ListenOn))
	}
	return out
}

// loopback reports whether a listen address binds only the loopback
// interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Endpoints returns the addresses the app serves or uses.
func (a *App) Endpoints() Endpoints { return a.ends }

// JetStream returns the app's JetStream context.
func (a *App) JetStream() jetstream.JetStream { return a.js }

// Registry returns the registry of the app's metrics.
func (a *App) Registry() *prometheus.Registry { return a.registry }

// Router returns the app's router.
func (a *App) Router() *eventbus.Router { return a.router }

// Ready reports why the app cannot make progress, or nil: the router must be
// running with no subscription holding for an unavailable chat service, and
// NATS must be connected.
func (a *App) Ready() error {
	if a.nc == nil || !a.nc.IsConnected() {
		return errors.New("NATS not connected")
	}
	if a.router == nil {
		return errors.New("router not started")
	}
	return a.router.Ready()
}

// Run consumes until ctx is done, then drains in-flight events (bounded by
// Messaging.DrainTimeout) and closes the app. It returns an error only when
// provisioning the streams and consumers fails, and not when it fails
// because ctx ended first.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	a.log.Info("consuming",
		slog.String("service", a.cfg.Messaging.ServiceName),
		slog.String("nats", a.ends.NATS),
		slog.String("chat", a.ends.Chat),
		slog.String("ops", a.ends.Ops))
	if err := a.router.Run(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}

// Close stops what Start started, in reverse order: the operations server,
// the NATS connection (flushing pending acknowledgements), the embedded chat
// service and the embedded NATS server. It is safe to call more than once.
func (a *App) Close() {
	a.closeOnce.Do(func() {
		if a.ops != nil {
			_ = a.ops.shutdown(2 * time.Second)
		}
		if a.nc != nil {
			_ = a.nc.FlushTimeout(2 * time.Second)
			a.nc.Close()
		}
		if a.chat != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = a.chat.Shutdown(ctx)
			cancel()
		}
		if a.nats != nil {
			a.nats.Shutdown()
		}
	})
}

// Banner writes the endpoints of a started app for a person to read.
func (a *App) Banner(w io.Writer) {
	e := a.ends
	fmt.Fprintf(w, "%s is running (mode %s, service %s)\n", a.cfg.Name, a.cfg.Mode, a.cfg.Messaging.ServiceName)
	fmt.Fprintf(w, "  NATS      %s\n", e.NATS)
	if e.NATSMonitor != "" {
		fmt.Fprintf(w, "  NATS mon  %s/healthz\n", e.NATSMonitor)
	}
	fmt.Fprintf(w, "  chat      %s  (Connect: POST %s/chat.v1.ChatService/<Method>)\n", e.Chat, e.Chat)
	if e.Ops != "" {
		if a.cfg.Messaging.EnableMetrics {
			fmt.Fprintf(w, "  metrics   %s/metrics\n", e.Ops)
		}
		fmt.Fprintf(w, "  health    %s/healthz  %s/readyz\n", e.Ops, e.Ops)
	}
	if e.DataDir != "" {
		fmt.Fprintf(w, "  data      %s\n", e.DataDir)
	}
}
