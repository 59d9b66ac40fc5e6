package chatserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"connectrpc.com/connect"
)

// NewLogger returns the logger that c describes, writing to w: text or
// JSON, where durations are written as text such as "1.5ms".
func NewLogger(w io.Writer, c LogConfig) *slog.Logger {
	level, err := parseLevel(c.Level)
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Encoding == "plain" || c.Encoding == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	opts.ReplaceAttr = durationText
	return slog.New(slog.NewJSONHandler(w, opts))
}

// durationText writes durations as text such as "1.5ms" rather than
// integer nanoseconds, so that JSON logs read as the text ones do.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
}

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
			args := []any{"procedure", req.Spec().Procedure, "code", code, "duration", time.Since(start), "peer", req.Peer().Addr}
			var ce *connect.Error
			if err != nil && errors.As(err, &ce) && serverFault(ce.Code()) {
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
