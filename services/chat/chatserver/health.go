package chatserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
)

// pingTimeout bounds the database ping of /readyz and the gRPC health check.
const pingTimeout = 2 * time.Second

// readyErr reports why the server takes no traffic: it is shutting down or
// its database does not answer. It returns nil when the server is ready.
func (s *Server) readyErr(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return errors.New("database unreachable")
	}
	return nil
}

// handleHealthz answers 200 while the process runs.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz answers 200 when the server takes traffic and 503 otherwise.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.readyErr(r.Context()); err != nil {
		s.logger.WarnContext(r.Context(), "not ready", "reason", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// healthChecker answers grpc.health.v1.Health for the whole server ("")
// and for chat.v1.ChatService, from the same readiness test as /readyz.
type healthChecker struct{ s *Server }

// Check reports serving when the server is ready, not serving otherwise,
// and not_found for services other than "" and chat.v1.ChatService.
func (h healthChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", chatv1connect.ChatServiceName:
	default:
		return nil, connect.NewError(connect.CodeNotFound, errors.New("unknown service "+req.Service))
	}
	if h.s.readyErr(ctx) != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}
