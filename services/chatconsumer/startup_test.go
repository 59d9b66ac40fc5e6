package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/activitychat/chat/services/internal/testbin"
	"github.com/activitychat/chat/services/internal/testwait"
)

// bin is the chatconsumer binary, built once per test run.
var bin = testbin.New("chatconsumer")

// binary builds the chatconsumer binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	return bin.Path(t)
}

func TestMain(m *testing.M) {
	code := m.Run()
	bin.Remove()
	os.Exit(code)
}

type lockedBuffer = testbin.LockedBuffer

// cmdRun is one run of the binary.
type cmdRun struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
}

// launch starts the binary in dir with env added to a clean environment.
func launch(t *testing.T, dir string, env []string, args ...string) *cmdRun {
	t.Helper()
	r := &cmdRun{cmd: exec.Command(binary(t), args...), done: make(chan struct{})}
	r.cmd.Dir = dir
	r.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

// wait waits up to limit for the process to exit and returns its code.
func (r *cmdRun) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("no exit within %s; stdout %q\nstderr %q", limit, r.stdout.String(), r.stderr.String())
		return -1
	}
}

// waitFor waits until stderr holds want.
func (r *cmdRun) waitFor(t *testing.T, want string) {
	t.Helper()
	testwait.Eventually(t, 15*time.Second, func() error {
		if !strings.Contains(r.stderr.String(), want) {
			return fmt.Errorf("stderr lacks %q: %q", want, r.stderr.String())
		}
		return nil
	})
}

// devEnv returns the environment that moves every port of the shipped dev
// config to a free one and its data to a temporary directory.
func devEnv(t *testing.T) []string {
	return []string{
		"CHATCONSUMER_DATA_DIR=" + t.TempDir(),
		"CHATCONSUMER_NATS_LISTEN=127.0.0.1:-1",
		"CHATCONSUMER_NATS_HTTP_LISTEN=127.0.0.1:-1",
		"CHATCONSUMER_CHAT_LISTEN=127.0.0.1:0",
		"CHATCONSUMER_METRICS_LISTEN=127.0.0.1:0",
	}
}

// TestBusyPortFailsAtOnce: with one of its ports taken, the dev stack fails
// within a second, before it starts anything or says it is running, naming
// the address, the key and the environment variable that moves it.
func TestBusyPortFailsAtOnce(t *testing.T) {
	binary(t) // build before timing
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, tt := range []struct{ key, env string }{
		{"Embedded.Nats.Listen", "CHATCONSUMER_NATS_LISTEN"},
		{"Embedded.Nats.HttpListen", "CHATCONSUMER_NATS_HTTP_LISTEN"},
		{"Embedded.Chat.ListenOn", "CHATCONSUMER_CHAT_LISTEN"},
		{"Messaging.MetricsListenOn", "CHATCONSUMER_METRICS_LISTEN"},
	} {
		t.Run(tt.key, func(t *testing.T) {
			env := append(devEnv(t), tt.env+"="+addr)
			start := time.Now()
			r := launch(t, ".", env, "-f", "etc/consumer.yaml")
			code := r.wait(t, 10*time.Second)
			took := time.Since(start)
			t.Logf("%s busy: exit %d after %s: %s", tt.key, code, took.Round(time.Millisecond), strings.TrimSpace(r.stderr.String()))
			if code != 1 || took > time.Second {
				t.Errorf("exit %d after %s, want 1 within a second", code, took)
			}
			for _, want := range []string{addr + " is already in use", tt.key, tt.env, "etc/consumer.yaml line"} {
				if !strings.Contains(r.stderr.String(), want) {
					t.Errorf("stderr lacks %q: %s", want, r.stderr.String())
				}
			}
			if out := r.stdout.String(); strings.Contains(out, "is running") {
				t.Errorf("stdout says running before failing: %q", out)
			}
		})
	}
}

// TestSignalWhileWaitingForNATS: SIGTERM or SIGINT while startup waits for
// an unreachable NATS ends the process at once with exit 0.
func TestSignalWhileWaitingForNATS(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + closed.Addr().String()
	closed.Close()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			r := launch(t, ".", []string{
				"NATS_URL=" + url, "CHAT_ENDPOINT=http://127.0.0.1:1", "CHAT_TOKEN=t",
				"CHATCONSUMER_METRICS_LISTEN=127.0.0.1:0",
			}, "-f", "etc/consumer.prod.yaml")
			r.waitFor(t, "NATS not reachable yet")
			start := time.Now()
			if err := r.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code := r.wait(t, 10*time.Second)
			took := time.Since(start)
			t.Logf("%s while waiting for NATS: exit %d after %s", sig, code, took.Round(time.Millisecond))
			if code != 0 || took > 2*time.Second {
				t.Errorf("exit %d after %s, want 0 at once; stderr %s", code, took, r.stderr.String())
			}
			if !strings.Contains(r.stdout.String(), "stopped: interrupted during startup") {
				t.Errorf("stdout = %q, want it to say startup was interrupted", r.stdout.String())
			}
			// Prod logs are JSON, with durations as text.
			if !strings.Contains(r.stderr.String(), `"drain_timeout":"15s"`) && !strings.Contains(r.stderr.String(), `"level":"WARN"`) {
				t.Errorf("stderr is not JSON: %s", r.stderr.String())
			}
		})
	}
}

// TestMissingVariablesAtOnce: the prod config without its environment
// names every missing variable in one run, with no suggested default for
// the secret; an invalid value is reported against its variable.
func TestMissingVariablesAtOnce(t *testing.T) {
	r := launch(t, ".", nil, "-f", "etc/consumer.prod.yaml")
	if code := r.wait(t, 10*time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	out := r.stderr.String()
	t.Logf("stderr: %s", out)
	for _, want := range []string{
		"3 problems:",
		"ChatRpc.Endpoint (line 16): environment variable CHAT_ENDPOINT is not set: set it, or write ${CHAT_ENDPOINT:-value}",
		"ChatRpc.Token (line 17): environment variable CHAT_TOKEN is not set: set it in the environment (it holds a secret, so the file gives no default)",
		"Nats.Url (line 21): environment variable NATS_URL is not set",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(out, "CHAT_TOKEN:-") {
		t.Error("stderr suggests a default for the secret CHAT_TOKEN")
	}

	r = launch(t, ".", []string{"NATS_URL=nats://127.0.0.1:1", "CHAT_ENDPOINT=http://127.0.0.1:1", "CHAT_TOKEN=hunter2", "CHATCONSUMER_CONCURRENCY=lots", "CHATCONSUMER_RETRY_MULTIPLIER=0.5"}, "-f", "etc/consumer.prod.yaml")
	if code := r.wait(t, 10*time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	out = r.stderr.String()
	t.Logf("stderr: %s", out)
	for _, want := range []string{
		"Messaging.Concurrency (line 36, from environment variable CHATCONSUMER_CONCURRENCY): must be an integer",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(out, "lots") || strings.Contains(out, "hunter2") {
		t.Errorf("stderr echoes a value: %s", out)
	}
}

// TestDefaultConfigFromRepositoryRoot: run from the repository root without
// -f, the binary finds the dev config, logs text and stops with exit 0.
func TestDefaultConfigFromRepositoryRoot(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	r := launch(t, root, devEnv(t))
	testwait.Eventually(t, 15*time.Second, func() error {
		if !strings.Contains(r.stdout.String(), "is running") {
			return fmt.Errorf("no banner: stdout %q stderr %q", r.stdout.String(), r.stderr.String())
		}
		return nil
	})
	if want := "level=INFO msg=starting app=chat.consumer config=services/chatconsumer/etc/consumer.yaml"; !strings.Contains(r.stderr.String(), want) {
		t.Errorf("stderr lacks %q: %s", want, r.stderr.String())
	}
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d after SIGINT, want 0; stderr %s", code, r.stderr.String())
	}
}

// TestNonLoopbackWarning: the dev config on a wildcard address warns that
// the embedded NATS server has no authentication.
func TestNonLoopbackWarning(t *testing.T) {
	env := append(devEnv(t), "CHATCONSUMER_NATS_LISTEN=0.0.0.0:-1")
	r := launch(t, ".", env, "-f", "etc/consumer.yaml")
	r.waitFor(t, "Embedded.Nats.Listen 0.0.0.0:-1 is not a loopback address: the embedded NATS server has no authentication")
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}
