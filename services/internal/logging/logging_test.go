package logging_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/activitychat/chat/services/internal/logging"
)

// TestEncodings: JSON logs write durations as text, as the text logs do;
// dev mode's default encoding is text, any other mode's JSON.
func TestEncodings(t *testing.T) {
	var buf bytes.Buffer
	logging.New(&buf, "info", logging.DefaultEncoding("prod")).Info("rpc", "duration", 1500*time.Microsecond)
	if !strings.Contains(buf.String(), `"duration":"1.5ms"`) {
		t.Errorf("JSON log = %s, want the duration as text", buf.String())
	}
	for _, enc := range []string{logging.DefaultEncoding("dev"), "plain"} {
		buf.Reset()
		logging.New(&buf, "", enc).Info("rpc", "duration", time.Second)
		if !strings.HasPrefix(buf.String(), "time=") || !strings.Contains(buf.String(), "duration=1s") {
			t.Errorf("%s log = %s, want a text line", enc, buf.String())
		}
	}
}

// TestLevels: the level filters, and an unknown one is refused by
// ParseLevel and taken as info by New.
func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "WARN", logging.Text)
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "shown") {
		t.Errorf("warn log = %q", buf.String())
	}
	if _, err := logging.ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), `"loud" is not debug, info, warn or error`) {
		t.Errorf("ParseLevel(loud) = %v", err)
	}
	buf.Reset()
	logging.New(&buf, "loud", logging.Text).Debug("hidden")
	if buf.Len() != 0 {
		t.Errorf("unknown level logged debug: %q", buf.String())
	}
}
