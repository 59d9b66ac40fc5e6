// Package logging builds the structured loggers of the services, so that
// the chat service and the consumer read their Log keys alike and write
// the same lines.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// The encodings of a log.
const (
	// Text writes logfmt-like lines, "time=... level=INFO msg=...".
	Text = "text"
	// JSON writes one JSON object per line.
	JSON = "json"
)

// New returns a logger that writes to w at level (debug, info, warn or
// error; "" and an unknown level are info, as the services' configs
// check the level where they load it) in encoding: Text (or its older
// name "plain"), or JSON for anything else. Durations are written as text
// such as "1.5ms" in both encodings, never as integer nanoseconds.
func New(w io.Writer, level, encoding string) *slog.Logger {
	lvl, err := ParseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if encoding == Text || encoding == "plain" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	opts.ReplaceAttr = durationText
	return slog.New(slog.NewJSONHandler(w, opts))
}

// DefaultEncoding returns the encoding of a service's mode when its config
// names none: Text in "dev" mode, JSON in any other.
func DefaultEncoding(mode string) string {
	if mode == "dev" {
		return Text
	}
	return JSON
}

// ParseLevel parses debug, info, warn or error, in any case; "" is info.
func ParseLevel(s string) (slog.Level, error) {
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

// durationText writes durations as text such as "1.5ms" rather than
// integer nanoseconds, so that JSON logs read as the text ones do.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
