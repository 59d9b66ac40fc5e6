package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/activitychat/chat/services/chatconsumer/internal/cli"
	"github.com/activitychat/chat/services/chatconsumer/internal/testenv"
	"github.com/activitychat/chat/services/internal/testwait"
)

// result is the outcome of one command line.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the command line args with stdin.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Main(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"run", "extra"}, `run: unexpected argument "extra"`},
		{[]string{"run", "--verbose"}, "flag provided but not defined: -verbose"},
		{[]string{"dlq"}, "dlq: missing subcommand"},
		{[]string{"dlq", "frob"}, `dlq: unknown subcommand "frob"`},
		{[]string{"dlq", "show"}, "dlq show: want exactly one SEQ, got 0 arguments"},
		{[]string{"dlq", "show", "abc"}, `dlq show: SEQ must be a positive integer, got "abc"`},
		{[]string{"dlq", "replay"}, "dlq replay: want SEQ... or --all"},
		{[]string{"dlq", "purge", "3"}, `dlq purge: unexpected argument "3"`},
		{[]string{"publish"}, "publish: missing event"},
		{[]string{"publish", "updated"}, `publish: unknown event "updated"`},
		{[]string{"publish", "created", "--activity", "a", "--title", "t"}, "publish created: creator_id: is required (--creator)"},
		{[]string{"publish", "joined", "--user", "u"}, "publish joined: activity_id: is required (--activity)"},
		{[]string{"publish", "activity.member.joined", "--user", "u"}, "publish joined: activity_id: is required (--activity)"},
		{[]string{"publish", "joined", `{"user_id": "u"}`, "--user", "u"}, "publish joined: give the event as JSON or by flags, not both (--user)"},
		{[]string{"publish", "joined", `{"activity_id": "a", "user_id": "u"}`}, "publish joined: joined_at: is required"},
		{[]string{"publish", "left", "--activity", "a", "--user", "u", "--left-at", "noon"}, `--left-at: want RFC 3339`},
		{[]string{"dlq", "list", "--stream", "NOPE"}, `--stream: no event is stored in "NOPE"`},
		{[]string{"publish", "left", "--activity", "a", "--user", "u", "--at", "yesterday"}, `--at: want RFC 3339`},
		{[]string{"publish", "joined", "--activity", "a b", "--user", "u"}, "publish joined: activity_id: has ' '"},
		{[]string{"publish", "raw"}, "publish raw: want SUBJECT and a JSON payload"},
		{[]string{"publish", "raw", "s", "--header", "novalue"}, "want KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := run(t, "", tt.args...)
			if r.code != cli.ExitUsage {
				t.Errorf("exit code = %d, want %d", r.code, cli.ExitUsage)
			}
			if !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "Usage:") {
				t.Errorf("stderr = %q, want %q and the usage", r.stderr, tt.want)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		if r := run(t, "", "help"); r.code != cli.ExitOK || !strings.Contains(r.stdout, "chatconsumer dlq list") {
			t.Errorf("help = %d %q", r.code, r.stdout)
		}
	})
}

func TestRunConfigErrorNamesTheKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(file, []byte("ChatRpc:\n  Endpoint: http://chat:8080\nNats:\n  Url: nats://nats:4222\nMessaging:\n  Retry:\n    Multiplier: 0.5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "-f", file)
	if r.code != cli.ExitError || !strings.Contains(r.stderr, "Messaging.Retry.Multiplier (line 7): must be at least 1, got 0.5") {
		t.Errorf("run = %d %q, want exit 1 naming Messaging.Retry.Multiplier", r.code, r.stderr)
	}
	r = run(t, "", "-f", filepath.Join(t.TempDir(), "missing.yaml"))
	if r.code != cli.ExitError || !strings.Contains(r.stderr, "missing.yaml") {
		t.Errorf("run = %d %q, want exit 1 naming the file", r.code, r.stderr)
	}
}

// startConsumer runs "chatconsumer -f FILE" against the test servers with a
// retry policy that dead-letters a join whose group does not exist after
// half a second, and returns FILE. The consumer stops when t ends, and must
// exit 0.
func startConsumer(t *testing.T, natsURL, chatURL string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "consumer.yaml")
	yaml := fmt.Sprintf(`
Name: chat.consumer.clitest
Mode: dev
Log:
  Level: warn
ChatRpc:
  Endpoint: %s
  Token: ${CLITEST_TOKEN}
Nats:
  Url: %s
Messaging:
  MetricsListenOn: 127.0.0.1:0
  DrainTimeout: 5s
  Retry:
    MaxRetries: 0
    InitialInterval: 50ms
    MaxInterval: 200ms
    MaxHold: 500ms
`, chatURL, natsURL)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLITEST_TOKEN", testenv.Token)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	var wg sync.WaitGroup
	code := -1
	wg.Go(func() { code = cli.Main(ctx, []string{"-f", file}, strings.NewReader(""), &out, &errOut) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if code != cli.ExitOK || !strings.Contains(out.String(), "stopped") {
			t.Errorf("consumer exited %d, stdout %q, stderr %q; want 0 and stopped", code, out.String(), errOut.String())
		}
	})
	testwait.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(out.String(), "is running") {
			return fmt.Errorf("consumer not started: %q", errOut.String())
		}
		return nil
	})
	return file
}

// TestDeadLetterCommands dead-letters the leave of a group's owner, which
// the chat service refuses, lists and shows it, replays it (refused again,
// it comes back as a new letter), then dead-letters poison and purges it,
// all through the command line.
func TestDeadLetterCommands(t *testing.T) {
	n := testenv.StartNATS(t)
	chat := testenv.StartChat(t)
	file := startConsumer(t, n.ClientURL(), chat.URL())
	nats := []string{"--nats", n.ClientURL()}

	mustRun := func(t *testing.T, args ...string) string {
		t.Helper()
		r := run(t, "", args...)
		if r.code != cli.ExitOK {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		return r.stdout
	}
	waitList := func(t *testing.T, want string) string {
		t.Helper()
		var out string
		testwait.Eventually(t, 10*time.Second, func() error {
			// The banner comes before the consumer has provisioned the
			// dead-letter stream, so the first lists may find none.
			r := run(t, "", "dlq", "list", "-f", file)
			if out = r.stdout; r.code != cli.ExitOK {
				return fmt.Errorf("dlq list: exit %d, stderr %q", r.code, r.stderr)
			}
			if !strings.Contains(out, want) {
				return fmt.Errorf("dlq list = %q, want %q", out, want)
			}
			return nil
		})
		return out
	}

	// The owner's leave is refused by the chat service (failed_precondition)
	// and dead-lettered on its first delivery.
	mustRun(t, append([]string{"publish", "created", "--activity", "act_late", "--creator", "owner", "--title", "Late"}, nats...)...)
	testwait.Eventually(t, 10*time.Second, func() error {
		if chat.Group("act_late") == nil {
			return testwait.ErrNotYet
		}
		return nil
	})
	out := mustRun(t, append([]string{"publish", "left", "--activity", "act_late", "--user", "owner", "--at", "2024-01-01T11:00:00Z"}, nats...)...)
	if !strings.Contains(out, "published to activity.member.left: stream ACTIVITY sequence") {
		t.Errorf("publish left = %q", out)
	}
	out = mustRun(t, append([]string{"publish", "left", "--activity", "act_late", "--user", "owner", "--at", "2024-01-01T11:00:00Z"}, nats...)...)
	if !strings.Contains(out, "duplicate") {
		t.Errorf("publishing the same event again = %q, want a duplicate", out)
	}

	list := waitList(t, "1 dead letters in ACTIVITY_DLQ")
	if !strings.Contains(list, "activity.member.left") || !strings.Contains(list, "failed_precondition") {
		t.Errorf("dlq list = %q, want the leave and its reason", list)
	}
	show := mustRun(t, "dlq", "show", "1", "-f", file)
	for _, want := range []string{"Dead letter 1", "Subject:    activity.member.left", "Deliveries: 1", "Reason:", "owner cannot be removed", `"activity_id":"act_late"`, "Dlq-Reason:"} {
		if !strings.Contains(show, want) {
			t.Errorf("dlq show 1 lacks %q:\n%s", want, show)
		}
	}
	if js := mustRun(t, "dlq", "show", "1", "--json", "-f", file); !strings.Contains(js, `"subject": "activity.member.left"`) {
		t.Errorf("dlq show --json = %q", js)
	}

	// A replay takes the letter out of the DLQ and publishes the event
	// again; still refused, it comes back as a new letter.
	if out := mustRun(t, "dlq", "replay", "1", "-f", file); !strings.Contains(out, "replayed dead letter 1 to activity.member.left") {
		t.Errorf("dlq replay 1 = %q", out)
	}
	testwait.Eventually(t, 10*time.Second, func() error {
		out := mustRun(t, "dlq", "list", "-f", file)
		if !strings.Contains(out, "1 dead letters") || !strings.Contains(out, "\n2 ") {
			return fmt.Errorf("dlq list = %q, want the replayed leave as a new letter", out)
		}
		return nil
	})
	if got := strings.Join(chat.Members("act_late"), ","); got != "owner" {
		t.Errorf("members = %s, want owner", got)
	}

	r := run(t, `{"activity_id": oops}`, append([]string{"publish", "raw", "activity.created", "-"}, nats...)...)
	if r.code != cli.ExitOK {
		t.Fatalf("publish raw: %d %q", r.code, r.stderr)
	}
	mustRun(t, append([]string{"publish", "left", "--binary", "--activity", "act_late", "--user", "owner", "--at", "2024-01-01T12:00:00Z"}, nats...)...)
	waitList(t, "3 dead letters")
	list = mustRun(t, "dlq", "list", "-f", file, "--json")
	if !strings.Contains(list, "cannot decode payload") {
		t.Errorf("dlq list --json = %q, want the decode reason", list)
	}
	binary := false
	for seq := uint64(2); seq <= 6; seq++ {
		r := run(t, "", "dlq", "show", fmt.Sprint(seq), "-f", file)
		if r.code == cli.ExitOK && strings.Contains(r.stdout, "application/protobuf") {
			binary = true
			if !strings.Contains(r.stdout, `Decoded as activity.member.left:`) || !strings.Contains(r.stdout, `"activity_id":"act_late"`) {
				t.Errorf("dlq show of a binary letter = %q, want it decoded", r.stdout)
			}
		}
	}
	if !binary {
		t.Error("no dead letter shows the binary leave")
	}
	if out := mustRun(t, "dlq", "purge", "-f", file); out != "purged 3 dead letters\n" {
		t.Errorf("dlq purge = %q", out)
	}
	waitList(t, "0 dead letters")
	if r := run(t, "", "dlq", "show", "2", "-f", file); r.code != cli.ExitError || !strings.Contains(r.stderr, "not found") {
		t.Errorf("dlq show of a purged letter = %d %q, want not found", r.code, r.stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
