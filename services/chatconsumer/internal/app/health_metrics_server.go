package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/activitychat/chat/services/chatconsumer/internal/embedded"
)

// opsIdleTimeout closes keep-alive connections of the operations server
// that sit idle this long.
const opsIdleTimeout = 60 * time.Second

// opsServer serves /metrics, /healthz and /readyz.
type opsServer struct {
	srv *http.Server
	ln  net.Listener
}

// startOps listens on addr and serves:
//
//   - /healthz: 200 while the process runs.
//   - /readyz: 200 when ready returns nil, 503 with the reason otherwise.
//   - /metrics: the Prometheus metrics of gatherer, when it is not nil.
func startOps(addr string, gatherer prometheus.Gatherer, ready func() error) (*opsServer, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = fmt.Fprintln(w, "ready")
	})
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &embedded.ListenError{Key: "Messaging.MetricsListenOn", Addr: addr, Err: err}
	}
	// A scraper or probe holds a connection for seconds at most; the
	// timeouts keep idle or slow clients from holding connections open.
	o := &opsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       opsIdleTimeout,
			MaxHeaderBytes:    16 << 10,
		},
		ln: ln,
	}
	go func() { _ = o.srv.Serve(ln) }()
	return o, nil
}

// URL returns the server's base URL.
func (o *opsServer) URL() string { return "http://" + o.ln.Addr().String() }

// shutdown stops the server, waiting up to timeout for requests.
func (o *opsServer) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := o.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
