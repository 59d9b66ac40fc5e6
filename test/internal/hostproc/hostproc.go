// Package hostproc runs the chat side's real programs as host processes, the
// way a user starts them: nats-server, the chat service and the chat
// consumer, built from this repository, each with its output in a log file
// that a failed test shows.
package hostproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/test/internal/harness"
)

// The programs, built once per test process.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds the chat service (chat), the chat consumer
// (chatconsumer) and nats-server into a temporary directory and returns it.
func Binaries(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "chat-hostproc-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator),
			"github.com/activitychat/chat/services/chat",
			"github.com/activitychat/chat/services/chatconsumer",
			"github.com/nats-io/nats-server/v2")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binDir
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// Addr returns the loopback address with port.
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// A Proc is one program run as a host process, its output in a log file.
// It is killed when the test ends, and its last output logged when the
// test failed.
type Proc struct {
	tb   testing.TB
	name string
	bin  string
	args []string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// New returns the program bin with args, not started, named name in logs.
func New(tb testing.TB, name, bin string, args ...string) *Proc {
	p := &Proc{tb: tb, name: name, bin: bin, args: args, log: filepath.Join(tb.TempDir(), name+".log")}
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			if b, err := os.ReadFile(p.log); err == nil {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				tb.Logf("last output of %s:\n%s", p.name, b)
			}
		}
	})
	return p
}

// Start starts the program, appending to its log.
func (p *Proc) Start() {
	p.tb.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.tb.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		p.tb.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
}

// Pid returns the process id of the running program.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the program started last has ended.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Name returns the program's name in logs.
func (p *Proc) Name() string { return p.name }

// signal sends sig and waits for the process to end.
func (p *Proc) signal(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process with SIGKILL, as a crash does.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL) }

// Stop ends the process gracefully with SIGTERM.
func (p *Proc) Stop() { p.signal(syscall.SIGTERM) }

// WriteConfig writes v as a configuration file (JSON is YAML) and returns
// its path.
func WriteConfig(tb testing.TB, name string, v any) string {
	tb.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// WaitHTTP200 waits until url answers 200.
func WaitHTTP200(tb testing.TB, url string, timeout time.Duration) {
	tb.Helper()
	harness.Eventually(tb, context.Background(), timeout, "GET "+url, func(ctx context.Context) error {
		status, err := get(ctx, url)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("status %d", status)
		}
		return nil
	})
}

// WaitNotReady waits until url answers anything but 200.
func WaitNotReady(tb testing.TB, url string) {
	tb.Helper()
	harness.Eventually(tb, context.Background(), time.Minute, "GET "+url+" fails", func(ctx context.Context) error {
		if status, err := get(ctx, url); err == nil && status == http.StatusOK {
			return errors.New("still ready")
		}
		return nil
	})
}

func get(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_ = res.Body.Close()
	return res.StatusCode, nil
}

// A Stack is the chat side's three programs on loopback: nats-server with
// JetStream, the chat service and the chat consumer.
type Stack struct {
	NATS, Chat, Consumer *Proc
	// NATSURL and ChatURL are the servers' URLs; ConsumerOps is the base
	// URL of the consumer's /readyz and /metrics.
	NATSURL, ChatURL, ConsumerOps string
}

// StackConfig is what differs between the runs of a Stack.
type StackConfig struct {
	// Bin is a directory with the chat, chatconsumer and nats-server
	// programs; empty builds this repository's (Binaries).
	Bin string
	// Driver and DSN are the chat service's database.
	Driver, DSN string
	// Messaging is the consumer's Messaging section; StartStack adds the
	// service name and the operations listener.
	Messaging map[string]any
	// Notices is the consumer's Notices section.
	Notices map[string]string
}

// StartStack writes the programs' configuration files, starts nats-server
// and the chat service, and waits until the chat service is ready. The
// consumer is not started: see StartConsumer.
func StartStack(tb testing.TB, cfg StackConfig) *Stack {
	tb.Helper()
	bin := cfg.Bin
	if bin == "" {
		bin = Binaries(tb)
	}
	natsPort, chatPort, opsPort := FreePort(tb), FreePort(tb), FreePort(tb)
	s := &Stack{
		NATSURL:     "nats://" + Addr(natsPort),
		ChatURL:     "http://" + Addr(chatPort),
		ConsumerOps: "http://" + Addr(opsPort),
	}
	s.NATS = New(tb, "nats-server", filepath.Join(bin, "nats-server"),
		"-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "-js", "-sd", filepath.Join(tb.TempDir(), "js"))
	chatCfg := WriteConfig(tb, "chat.yaml", map[string]any{
		"Name": "chat.rpc", "ListenOn": Addr(chatPort), "Mode": "dev",
		"Database": map[string]string{"Driver": cfg.Driver, "DSN": cfg.DSN},
		"Auth":     map[string]any{"Tokens": []string{}},
		"Log":      map[string]string{"Level": "warn"},
	})
	s.Chat = New(tb, "chat", filepath.Join(bin, "chat"), "-f", chatCfg)
	messaging := map[string]any{"ServiceName": "chat.consumer", "EnableMetrics": true, "MetricsListenOn": Addr(opsPort)}
	maps.Copy(messaging, cfg.Messaging)
	consumerCfg := WriteConfig(tb, "consumer.yaml", map[string]any{
		"Name": "chat.consumer", "Mode": "dev",
		"Log":       map[string]string{"Level": "warn"},
		"ChatRpc":   map[string]string{"Endpoint": s.ChatURL, "Timeout": "5s"},
		"Nats":      map[string]string{"Url": s.NATSURL},
		"Messaging": messaging,
		"Notices":   cfg.Notices,
	})
	s.Consumer = New(tb, "chatconsumer", filepath.Join(bin, "chatconsumer"), "-f", consumerCfg)

	s.NATS.Start()
	s.Chat.Start()
	WaitHTTP200(tb, s.ChatURL+"/readyz", 30*time.Second)
	return s
}

// StartConsumer starts the consumer and waits until it is ready.
func (s *Stack) StartConsumer(tb testing.TB) {
	tb.Helper()
	s.Consumer.Start()
	WaitHTTP200(tb, s.ConsumerOps+"/readyz", 30*time.Second)
}

// JetStream connects to the stack's nats-server, closing the connection
// when tb ends.
func (s *Stack) JetStream(tb testing.TB, opts ...jetstream.JetStreamOpt) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(s.NATSURL, nats.MaxReconnects(-1))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// EnvInt returns the environment variable name as a positive number, or
// def: the default of a size flag that the environment can set too.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
