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
)

// bin is the chat binary, built once per test run.
var bin = testbin.New("chat")

// binary builds the chat binary once per test run.
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

// chatRun is one run of the binary.
type chatRun struct {
	cmd    *exec.Cmd
	stderr lockedBuffer
	done   chan struct{}
}

// launch starts the binary in dir with env added to a clean environment.
func launch(t *testing.T, dir string, env []string, args ...string) *chatRun {
	t.Helper()
	r := &chatRun{cmd: exec.Command(binary(t), args...), done: make(chan struct{})}
	r.cmd.Dir = dir
	r.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stderr, &r.stderr
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

func (r *chatRun) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("no exit within %s; output %q", limit, r.stderr.String())
		return -1
	}
}

func (r *chatRun) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(r.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q: %s", want, r.stderr.String())
		}
		select {
		case <-r.done:
			t.Fatalf("exited; output lacks %q: %s", want, r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestBusyPortFailsAtOnce: a taken ListenOn fails within a second, before
// the service says it is ready, naming the address, the key and the
// variable.
func TestBusyPortFailsAtOnce(t *testing.T) {
	binary(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	start := time.Now()
	r := launch(t, ".", []string{"CHAT_LISTEN_ON=" + addr, "CHAT_DB_DSN=" + filepath.Join(t.TempDir(), "chat.db")})
	code := r.wait(t, 10*time.Second)
	took := time.Since(start)
	out := r.stderr.String()
	t.Logf("exit %d after %s: %s", code, took.Round(time.Millisecond), out)
	if code != 1 || took > time.Second {
		t.Errorf("exit %d after %s, want 1 within a second", code, took)
	}
	for _, want := range []string{"ListenOn: " + addr + " is already in use", "set CHAT_LISTEN_ON or change ListenOn (etc/chat.yaml line 4)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "chat service ready") {
		t.Errorf("says ready before failing: %s", out)
	}
}

// TestDefaultConfigFromRepositoryRoot: from the repository root without
// -f, the service finds its dev config, logs text and stops on SIGTERM with
// exit 0.
func TestDefaultConfigFromRepositoryRoot(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	r := launch(t, root, []string{"CHAT_LISTEN_ON=127.0.0.1:0", "CHAT_DB_DSN=" + filepath.Join(t.TempDir(), "chat.db")})
	r.waitFor(t, "level=INFO msg=listening")
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d, want 0; output %s", code, r.stderr.String())
	}
}

// TestConfigErrors: the service's config errors carry the key path, the
// line and the known keys, as the consumer's do.
func TestConfigErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "chat.yaml")
	if err := os.WriteFile(file, []byte("ListenOnn: 127.0.0.1:0\nMode: dev\nDatabase:\n  DSN: x.db\n  Driver: mysql\nAuth:\n  Tokens: ['${CHAT_TOKEN}']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := launch(t, ".", nil, "-f", file)
	if code := r.wait(t, 10*time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	out := r.stderr.String()
	t.Logf("output: %s", out)
	for _, want := range []string{
		"2 problems:",
		"ListenOnn (line 1): unknown key (did you mean ListenOn? known keys of the top level: Auth, Database, Limits, ListenOn, Log, Mode, Name)",
		"Auth.Tokens[0] (line 7): environment variable CHAT_TOKEN is not set: set it in the environment (it holds a secret, so the file gives no default)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestSignalWhileOpeningTheDatabase: SIGTERM while the service waits for a
// PostgreSQL server that does not answer ends it at once with exit 0.
func TestSignalWhileOpeningTheDatabase(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			accepted <- c // hold the connection, never answer
		}
	}()
	defer func() {
		for len(accepted) > 0 {
			(<-accepted).Close()
		}
	}()
	file := filepath.Join(t.TempDir(), "chat.yaml")
	dsn := fmt.Sprintf("postgres://chat:pw@%s/chat?sslmode=disable", silent.Addr())
	if err := os.WriteFile(file, []byte("ListenOn: 127.0.0.1:0\nMode: dev\nDatabase:\n  DSN: "+dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := launch(t, ".", nil, "-f", file)
	select {
	case c := <-accepted:
		accepted <- c
	case <-time.After(10 * time.Second):
		t.Fatalf("the service never dialled the database: %s", r.stderr.String())
	}
	start := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := r.wait(t, 10*time.Second)
	took := time.Since(start)
	t.Logf("SIGTERM while opening the database: exit %d after %s", code, took.Round(time.Millisecond))
	if code != 0 || took > 2*time.Second {
		t.Errorf("exit %d after %s, want 0 at once; output %s", code, took, r.stderr.String())
	}
}
