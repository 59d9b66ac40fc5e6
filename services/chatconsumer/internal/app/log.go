package app

import (
	"io"
	"log/slog"

	"github.com/activitychat/chat/services/chatconsumer/internal/config"
)

// NewLogger returns the logger cfg asks for: text in dev mode, JSON in prod
// mode (durations as text such as "1.5ms", not integer nanoseconds), at
// cfg.Log.Level, writing to w. Configuration values are never
// logged whole, so secrets stay out of the log.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.Mode == config.ModeProd {
		opts.ReplaceAttr = durationText
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With(slog.String("app", cfg.Name))
}

// durationText writes a duration as text such as "1.5ms".
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
