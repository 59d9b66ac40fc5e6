package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/activitychat/chat/services/internal/testwait"
)

// devConfig is the shipped dev config with free ports and a temporary data
// directory, so that the test runs beside a developer's own stack.
const devConfig = `
Name: chat.consumer
Mode: dev
Messaging:
  MetricsListenOn: 127.0.0.1:0
  DrainTimeout: 5s
Embedded:
  DataDir: %s
  Nats:
    Enabled: true
    Listen: 127.0.0.1:-1
    HttpListen: 127.0.0.1:-1
    Sync: always
  Chat:
    Enabled: true
    ListenOn: 127.0.0.1:0
`

// process is a running chatconsumer binary.
type process struct {
	cmd   *exec.Cmd
	lines chan string
	mu    sync.Mutex
	out   strings.Builder
	ends  map[string]string // banner label -> URL
}

var bannerLine = regexp.MustCompile(`^\s+(NATS mon|NATS|chat|metrics)\s+(\S+)`)

// start runs the binary with args and waits for its banner.
func start(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), lines: make(chan string, 100), ends: map[string]string{}}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.lines <- s.Text()
		}
		close(p.lines)
	}()
	timeout := time.After(30 * time.Second)
	for len(p.ends) < 4 {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("chatconsumer exited before its banner; stderr:\n%s", p.stderr())
			}
			if m := bannerLine.FindStringSubmatch(line); m != nil {
				p.ends[m[1]] = strings.TrimSuffix(strings.TrimSuffix(m[2], "/healthz"), "/metrics")
			}
		case <-timeout:
			t.Fatalf("no banner within 30s; stderr:\n%s", p.stderr())
		}
	}
	return p
}

func (p *process) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// stop sends SIGTERM and returns the exit code and how long the exit took.
func (p *process) stop(t *testing.T) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	for range p.lines {
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// connectJSON posts body to a ChatService procedure with the Connect
// protocol's JSON encoding, as curl would.
func connectJSON(t *testing.T, chatURL, procedure, body string) (int, string) {
	t.Helper()
	res, err := http.Post(chatURL+"/chat.v1.ChatService/"+procedure, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestDevModeBinary builds the binary and walks the README: start the dev
// stack with one command, publish the seed's examples with the binary's raw
// publisher, see the group over Connect JSON, stop with SIGTERM (exit 0 in
// bound), start again on the same data and find the group still there.
func TestDevModeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "chatconsumer")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	file := filepath.Join(dir, "consumer.yaml")
	if err := os.WriteFile(file, fmt.Appendf(nil, devConfig, filepath.Join(dir, "data")), 0o600); err != nil {
		t.Fatal(err)
	}

	p := start(t, bin, "-f", file)
	natsURL, chatURL, ops := p.ends["NATS"], p.ends["chat"], p.ends["metrics"]
	for _, u := range []string{ops + "/healthz", ops + "/readyz", p.ends["NATS mon"] + "/healthz"} {
		testwait.Eventually(t, 15*time.Second, func() error {
			res, err := http.Get(u)
			if err != nil {
				return err
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s = %d", u, res.StatusCode)
			}
			return nil
		})
	}

	seed := [][2]string{
		{"activity.created", `{"activity_id":"act_123456","creator_id":"user_789","title":"周末爬山活动","created_at":"2024-01-01T10:00:00Z"}`},
		{"activity.member.joined", `{"activity_id":"act_123456","user_id":"user_456","joined_at":"2024-01-01T11:00:00Z"}`},
		{"activity.member.left", `{"activity_id":"act_123456","user_id":"user_456","left_at":"2024-01-01T12:00:00Z"}`},
	}
	wantCounts := []string{`"memberCount":"1"`, `"memberCount":"2"`, `"memberCount":"1"`}
	for i, ev := range seed {
		out, err := exec.Command(bin, "publish", "raw", ev[0], ev[1], "--nats", natsURL).CombinedOutput()
		if err != nil {
			t.Fatalf("publish raw %s: %v\n%s", ev[0], err, out)
		}
		testwait.Eventually(t, 15*time.Second, func() error {
			code, body := connectJSON(t, chatURL, "GetGroupByActivityId", `{"activity_id":"act_123456"}`)
			if code != http.StatusOK || !strings.Contains(body, wantCounts[i]) {
				return fmt.Errorf("after %s: GetGroupByActivityId = %d %s, want %s", ev[0], code, body, wantCounts[i])
			}
			return nil
		})
	}
	res, err := http.Get(ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, name := range []string{"messaging_handler_duration_seconds", "messaging_handler_total", "messaging_handler_errors_total"} {
		if !strings.Contains(string(metrics), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	code, took := p.stop(t)
	if code != 0 || took > 10*time.Second {
		t.Errorf("SIGTERM: exit %d after %s, want 0 within 10s; stderr:\n%s", code, took, p.stderr())
	}

	p = start(t, bin, "-f", file)
	_, body := connectJSON(t, p.ends["chat"], "GetGroupByActivityId", `{"activity_id":"act_123456"}`)
	if !strings.Contains(body, `"ownerId":"user_789"`) {
		t.Errorf("after a restart, GetGroupByActivityId = %s, want the group kept", body)
	}
	_, body = connectJSON(t, p.ends["chat"], "ListGroupMessages", fmt.Sprintf(`{"group_id":%q}`, groupID(body)))
	if n := strings.Count(body, `"system":true`); n != 3 {
		t.Errorf("after a restart, %d notices, want 3: %s", n, body)
	}
	out, err := exec.Command(bin, "dlq", "list", "--nats", p.ends["NATS"]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 dead letters") {
		t.Errorf("dlq list after a restart: %v\n%s", err, out)
	}
	if code, _ := p.stop(t); code != 0 {
		t.Errorf("second SIGTERM: exit %d", code)
	}
}

var groupIDField = regexp.MustCompile(`"groupId":"([^"]+)"`)

func groupID(body string) string {
	if m := groupIDField.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}
