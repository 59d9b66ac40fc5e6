package app_test

import (
	"strings"
	"testing"

	"github.com/activitychat/chat/services/chatconsumer/internal/app"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
)

// TestWarnings: an embedded service beyond loopback is warned about.
func TestWarnings(t *testing.T) {
	cfg := config.Default()
	cfg.Embedded.Nats.Enabled, cfg.Embedded.Chat.Enabled = true, true
	if w := app.Warnings(&cfg); len(w) != 0 {
		t.Errorf("loopback defaults: warnings %q", w)
	}
	cfg.Embedded.Nats.Listen = "0.0.0.0:4222"
	cfg.Embedded.Chat.ListenOn = "192.0.2.1:8080"
	w := app.Warnings(&cfg)
	if len(w) != 2 || !strings.Contains(w[0], "no authentication") || !strings.Contains(w[1], "ChatRpc.Token is empty") {
		t.Errorf("warnings = %q", w)
	}
}
