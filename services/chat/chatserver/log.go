package chatserver

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
)

// logInterceptor logs every call at debug level and failures other than
// the caller's own mistakes at warn level.
func logInterceptor(logger *slog.Logger) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if req.Spec().IsClient {
				return next(ctx, req)
			}
			start := time.Now()
			res, err := next(ctx, req)
			code := "ok"
			if err != nil {
				code = connect.CodeOf(err).String()
			}
			var ce *connect.Error
			fault := err != nil && errors.As(err, &ce) && serverFault(ce.Code())
			if !fault && !logger.Enabled(ctx, slog.LevelDebug) {
				// Build the line only when it is written: most calls
				// succeed and debug is off in production.
				return res, err
			}
			args := []any{"procedure", req.Spec().Procedure, "code", code, "duration", time.Since(start), "peer", req.Peer().Addr}
			if fault {
				logger.WarnContext(ctx, "rpc failed", append(args, "error", err)...)
			} else {
				logger.DebugContext(ctx, "rpc", args...)
			}
			return res, err
		}
	})
}

// serverFault reports whether code blames the server rather than the call.
func serverFault(code connect.Code) bool {
	switch code {
	case connect.CodeInternal, connect.CodeUnknown, connect.CodeUnavailable, connect.CodeDataLoss, connect.CodeUnimplemented:
		return true
	}
	return false
}
