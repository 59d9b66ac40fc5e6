package app

import (
	"io"
	"log/slog"

	"github.com/activitychat/chat/services/chatconsumer/internal/config"
)

// NewLogger returns the logger cfg asks for: text in dev mode, JSON in prod
// mode, at cfg.Log.Level, writing to w. Configuration values are never
// logged whole, so secrets stay out of the log.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.Mode == config.ModeProd {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With(slog.String("app", cfg.Name))
}
