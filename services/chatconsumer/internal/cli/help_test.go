package cli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/activitychat/chat/services/chatconsumer/internal/cli"
	"github.com/activitychat/chat/services/chatconsumer/internal/testenv"
	"github.com/activitychat/chat/services/internal/testwait"
)

// TestHelpEverywhere: --help, -h and "help" work at every level, print to
// standard output and exit 0 (publish --help used to be an unknown event).
func TestHelpEverywhere(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "chatconsumer publish raw SUBJECT"},
		{[]string{"-h"}, "chatconsumer publish raw SUBJECT"},
		{[]string{"help"}, "chatconsumer dlq list"},
		{[]string{"run", "--help"}, "-f file"},
		{[]string{"help", "run"}, "Runs the consumer until SIGINT or SIGTERM"},
		{[]string{"dlq", "--help"}, "a poison event is dead-lettered again"},
		{[]string{"dlq", "-h"}, "chatconsumer dlq purge"},
		{[]string{"dlq", "help"}, "chatconsumer dlq purge"},
		{[]string{"dlq", "list", "--help"}, "-limit n"},
		{[]string{"dlq", "show", "--help"}, "-json"},
		{[]string{"dlq", "replay", "-h"}, "-all"},
		{[]string{"dlq", "purge", "--help"}, "Deletes every dead letter"},
		{[]string{"help", "dlq", "replay"}, "dead-lettered again"},
		{[]string{"publish", "--help"}, "chatconsumer publish created"},
		{[]string{"publish", "-h"}, "chatconsumer publish left"},
		{[]string{"publish", "created", "--help"}, "-creator id"},
		{[]string{"publish", "joined", "--help"}, "-user id"},
		{[]string{"publish", "left", "-h"}, "-user id"},
		{[]string{"publish", "raw", "--help"}, "-header KEY=VALUE"},
		{[]string{"help", "publish", "raw"}, "-core"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, "", tt.args...)
			if r.code != cli.ExitOK || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing on stderr", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, tt.want) {
				t.Errorf("stdout = %q, want the usage with %q", r.stdout, tt.want)
			}
		})
	}
	// The help of one subcommand lists its own flags only.
	if r := run(t, "", "dlq", "purge", "--help"); strings.Contains(r.stdout, "-limit") {
		t.Errorf("dlq purge --help lists list's flags: %q", r.stdout)
	}
	if r := run(t, "", "help", "frob"); r.code != cli.ExitUsage {
		t.Errorf("help frob: exit %d, want %d", r.code, cli.ExitUsage)
	}
}

// TestDeadLettersAreEscaped: an event carrying terminal escape sequences in
// its payload and headers is dead-lettered; dlq list and show print those
// bytes escaped, never raw, and --json keeps them exact. An empty
// Dlq-Original-Id (the event had no Nats-Msg-Id) is not printed.
func TestDeadLettersAreEscaped(t *testing.T) {
	n := testenv.StartNATS(t)
	chat := testenv.StartChat(t)
	file := startConsumer(t, n.ClientURL(), chat.URL())

	payload := "\x1b]0;pwned\x07\x1b[2J\u202enot json\r\u009b"
	r := run(t, payload, "publish", "raw", "activity.member.joined", "-", "--header", "X-Evil=\x1b[31mred", "--nats", n.ClientURL())
	if r.code != cli.ExitOK {
		t.Fatalf("publish raw: %d %q", r.code, r.stderr)
	}
	var list string
	testwait.Eventually(t, 10*time.Second, func() error {
		list = run(t, "", "dlq", "list", "-f", file).stdout
		if !strings.Contains(list, "1 dead letters") {
			return fmt.Errorf("dlq list = %q", list)
		}
		return nil
	})
	show := run(t, "", "dlq", "show", "1", "-f", file)
	if show.code != cli.ExitOK {
		t.Fatalf("dlq show: %d %q", show.code, show.stderr)
	}
	for name, out := range map[string]string{"list": list, "show": show.stdout} {
		if i := strings.IndexFunc(out, func(r rune) bool {
			return r < 0x20 && r != '\n' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e'
		}); i >= 0 {
			t.Errorf("dlq %s prints a raw control character at %d: %q", name, i, out)
		}
	}
	for _, want := range []string{`\x1b]0;pwned\x07\x1b[2J\u202enot json\r\u009b`, `X-Evil: \x1b[31mred`} {
		if !strings.Contains(show.stdout, want) {
			t.Errorf("dlq show lacks %q:\n%s", want, show.stdout)
		}
	}
	if strings.Contains(show.stdout, "Dlq-Original-Id") {
		t.Errorf("dlq show prints an empty Dlq-Original-Id:\n%s", show.stdout)
	}
	js := run(t, "", "dlq", "show", "1", "--json", "-f", file)
	var letter struct {
		Data   string              `json:"data"`
		Header map[string][]string `json:"header"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &letter); err != nil {
		t.Fatalf("dlq show --json: %v\n%s", err, js.stdout)
	}
	if letter.Data != payload {
		t.Errorf("--json data = %q, want the payload exactly", letter.Data)
	}
	if got := letter.Header["X-Evil"]; len(got) != 1 || got[0] != "\x1b[31mred" {
		t.Errorf("--json header X-Evil = %q, want it exactly", got)
	}
}
