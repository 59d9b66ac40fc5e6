package chatserver_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/activitychat/chat/services/chat/chatserver"
	"github.com/activitychat/chat/services/internal/logging"
)

// TestLoggerEncodings: JSON logs write durations as text, as the text logs
// do, and dev mode's default encoding is text.
func TestLoggerEncodings(t *testing.T) {
	var buf bytes.Buffer
	logging.New(&buf, "info", "json").Info("rpc", "duration", 1500*time.Microsecond)
	if !strings.Contains(buf.String(), `"duration":"1.5ms"`) {
		t.Errorf("JSON log = %s, want the duration as text", buf.String())
	}
	cfg, err := chatserver.Parse([]byte("Mode: dev\nDatabase: {DSN: x.db}\n"))
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	logging.New(&buf, cfg.Log.Level, cfg.Log.Encoding).Info("rpc", "duration", time.Second)
	if !strings.HasPrefix(buf.String(), "time=") || !strings.Contains(buf.String(), "duration=1s") {
		t.Errorf("dev log = %s, want a text line", buf.String())
	}
}
