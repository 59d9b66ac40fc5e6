package handlers

import (
	"context"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/activitychat/chat/contracts/eventbus"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
)

// ClientConfig says how to reach the chat service.
type ClientConfig struct {
	// Endpoint is the chat service's base URL.
	Endpoint string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Timeout bounds each call; zero means no bound besides the handler's.
	Timeout time.Duration
	// MaxConns bounds the idle connections kept to the chat service; set it
	// to the number of handlers that run at once. Zero means 64.
	MaxConns int
	// HTTPClient replaces the default HTTP client, for tests.
	HTTPClient connect.HTTPClient
}

// NewClient returns a Connect client of the chat service whose calls carry
// the bearer token, the traceparent of the event being handled
// (eventbus.TraceparentFromContext) and the per-call timeout.
func NewClient(cfg ClientConfig) chatv1connect.ChatServiceClient {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newHTTPClient(cfg.MaxConns)
	}
	return chatv1connect.NewChatServiceClient(hc, cfg.Endpoint,
		connect.WithInterceptors(newCallInterceptor(cfg.Token, cfg.Timeout)),
		// Messages are a few hundred bytes on a local network: compressing
		// them costs more CPU than it saves time, so do not ask for it.
		connect.WithAcceptCompression("gzip", nil, nil))
}

func newHTTPClient(maxConns int) *http.Client {
	if maxConns <= 0 {
		maxConns = 64
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        2 * maxConns,
		MaxIdleConnsPerHost: 2 * maxConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}}
}

// callInterceptor adds the token, the trace context and the timeout to every
// unary call.
type callInterceptor struct {
	authorization string // "Bearer <token>", or "" for no token
	timeout       time.Duration
}

func newCallInterceptor(token string, timeout time.Duration) *callInterceptor {
	i := &callInterceptor{timeout: timeout}
	if token != "" {
		i.authorization = "Bearer " + token
	}
	return i
}

// traceparentKey is eventbus.HeaderTraceparent in the canonical form that
// http.Header.Set would give it at every call.
var traceparentKey = http.CanonicalHeaderKey(eventbus.HeaderTraceparent)

func (i *callInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if i.authorization != "" {
			req.Header()["Authorization"] = []string{i.authorization}
		}
		if tp := eventbus.TraceparentFromContext(ctx); tp != "" {
			req.Header()[traceparentKey] = []string{tp}
		}
		if i.timeout > 0 && !deadlineWithin(ctx, i.timeout) {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, i.timeout)
			defer cancel()
		}
		return next(ctx, req)
	}
}

// deadlineWithin reports whether ctx is done within d anyway: then a
// timeout of d would change nothing, and need cost no context and timer.
func deadlineWithin(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ok && time.Until(deadline) <= d
}

func (i *callInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *callInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
