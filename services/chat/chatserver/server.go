// Package chatserver runs chat.v1.ChatService as an HTTP server: Connect,
// gRPC and gRPC-Web on one port, HTTP/2 without TLS (h2c) beside HTTP/1.1,
// bearer token authentication, Prometheus metrics, health checks and
// graceful shutdown.
//
// The chat binary is a thin main around it; other programs embed it the same
// way:
//
//	cfg, err := chatserver.Load("services/chat/etc/chat.yaml")
//	...
//	srv, err := chatserver.New(cfg, logger)
//	...
//	defer srv.Close()
//	err = srv.ListenAndServe(ctx) // returns after ctx is done and calls drained
//
// Routes:
//
//	/chat.v1.ChatService/*       the service; bearer token when Auth.Tokens is set,
//	                             checked before the body is read
//	/grpc.health.v1.Health/*     gRPC health, open
//	/healthz                     200 while the process runs, open
//	/readyz                      200 when the database answers, else 503, open
//	/metrics                     Prometheus metrics, open
package chatserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/services/chat/chatservice"
	"github.com/activitychat/chat/services/chat/store"
)

const (
	// MaxRequestBytes is the largest request message the server reads;
	// larger ones fail with resource_exhausted.
	MaxRequestBytes = 1 << 20
	// openTimeout bounds connecting to and migrating the database in New.
	openTimeout = 30 * time.Second
	// ShutdownTimeout is how long a shutdown waits for calls in flight.
	ShutdownTimeout = 15 * time.Second
)

// Server is the chat service's HTTP server. Its Handler may be served by
// any http.Server; ListenAndServe and Serve run one with h2c and graceful
// shutdown.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	store    store.Store
	handler  http.Handler
	draining atomic.Bool // set when shutdown begins; /readyz then fails
	closed   sync.Once
	closeErr error
}

// New validates cfg, opens and migrates its database and builds the
// server. An unreachable database fails here, with an error that names
// Database.DSN but does not repeat it. A nil logger discards the logs.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	return NewContext(context.Background(), cfg, logger, opts...)
}

// NewContext is New, giving up opening the database when ctx is done.
func NewContext(ctx context.Context, cfg Config, logger *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{}
	for _, opt := range opts {
		opt.apply(&o)
	}
	registry := o.registry
	if registry == nil {
		registry = prometheus.NewRegistry()
		registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	st, err := store.Open(ctx, cfg.Database.Driver, cfg.Database.DSN)
	if err != nil {
		return nil, fmt.Errorf("Database.DSN: cannot open the %s database: %w", cfg.Database.Driver, err)
	}
	m, err := newMetrics(registry)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("register metrics: %w", err), st.Close())
	}
	s := &Server{cfg: cfg, logger: logger, store: st}

	handlerOpts := []connect.HandlerOption{
		connect.WithReadMaxBytes(MaxRequestBytes),
		boundedGzip(MaxRequestBytes),
		connect.WithRecover(s.recoverPanic),
	}
	for _, c := range jsonCodecs {
		handlerOpts = append(handlerOpts, connect.WithCodec(c))
	}
	path, chat := chatv1connect.NewChatServiceHandler(
		chatservice.New(st, logger),
		append(handlerOpts, connect.WithInterceptors(m.interceptor(), logInterceptor(logger)))...,
	)
	if len(cfg.Auth.Tokens) > 0 {
		chat = newAuthenticator(cfg.Auth.Tokens, connect.NewErrorWriter(handlerOpts...), m.unauthenticated).wrap(chat)
	} else {
		logger.Warn("authentication is off: Auth.Tokens is empty, which Mode: dev allows")
	}
	mux := http.NewServeMux()
	mux.Handle(path, chat)
	mux.Handle(grpchealth.NewHandler(healthChecker{s}, handlerOpts...))
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}))
	s.handler = bodyDeadline(cfg.Limits.bodyTimeout(), mux)

	logger.Info("chat service ready",
		"driver", cfg.Database.Driver, "mode", cfg.Mode, "auth", len(cfg.Auth.Tokens) > 0, "listen_on", cfg.ListenOn)
	return s, nil
}

func (s *Server) recoverPanic(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
	s.logger.ErrorContext(ctx, "panic in handler", "procedure", spec.Procedure, "panic", p)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

// Handler returns the server's routes, for an http.Server or
// httptest.Server of the caller's.
func (s *Server) Handler() http.Handler { return s.handler }

// ListenAndServe listens on Config.ListenOn and serves until ctx is done;
// see Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenOn)
	if err != nil {
		return fmt.Errorf("ListenOn: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves HTTP/1.1 and h2c on ln until ctx is done, with at most
// Limits.MaxConns connections open at a time, then shuts down
// gracefully: /readyz starts failing, the listener closes and calls in
// flight get ShutdownTimeout to finish. It returns nil after a clean
// shutdown. Serve does not close the store; Close does.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           s.handler,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.logger.Info("listening", "addr", ln.Addr().String(), "max_conns", s.cfg.Limits.maxConns())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(newLimitListener(ln, s.cfg.Limits.maxConns())) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.logger.Info("shutting down", "timeout", ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	s.logger.Info("stopped")
	return nil
}

// Close closes the database. Call it after Serve has returned; it is safe
// to call more than once.
func (s *Server) Close() error {
	s.closed.Do(func() {
		s.draining.Store(true)
		s.closeErr = s.store.Close()
	})
	return s.closeErr
}
