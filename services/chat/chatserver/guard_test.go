package chatserver_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/services/chat/chatserver"
)

// serveLimited runs a server of cfg on a loopback listener with Serve and
// returns its address; the server stops when the test ends.
func serveLimited(t *testing.T, cfg chatserver.Config, logger *slog.Logger) string {
	t.Helper()
	srv, err := chatserver.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-served
		srv.Close()
	})
	return ln.Addr().String()
}

// h2cClient speaks HTTP/2 without TLS, as gRPC needs.
func h2cClient() *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &protocols}}
}

// rawRequest writes an HTTP/1.1 POST of a Connect JSON call with the given
// extra header lines, announcing size bytes of body and sending only
// sent of them, and returns the connection.
func rawRequest(t *testing.T, addr, headers string, size, sent int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := "POST /chat.v1.ChatService/CreateGroup HTTP/1.1\r\nHost: chat\r\nContent-Type: application/json\r\n" +
		headers + "Content-Length: " + strconv.Itoa(size) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+strings.Repeat(" ", sent)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readResponse reads one response from conn, failing after wait.
func readResponse(t *testing.T, conn net.Conn, wait time.Duration) (*http.Response, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response within %v: %v", wait, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body)
}

// TestAuthBeforeBody: a call without a valid token is answered as soon as
// its headers are in, in its protocol's own shape, while its body has not
// even started; the server reads none of it.
func TestAuthBeforeBody(t *testing.T) {
	addr := serveLimited(t, testConfig(backends[0].database(t), "secret"), nil)

	t.Run("connect over HTTP/1.1", func(t *testing.T) {
		conn := rawRequest(t, addr, "", 1<<20, 0)
		res, body := readResponse(t, conn, 5*time.Second)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthenticated"`) {
			t.Errorf("HTTP %d %s; want 401 unauthenticated", res.StatusCode, body)
		}
		if got := res.Header.Get("WWW-Authenticate"); got != `Bearer realm="chat"` {
			t.Errorf("WWW-Authenticate = %q", got)
		}
		// The connection is closed, not drained of a body nobody wants.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("after the answer: read %d, %v; want EOF", n, err)
		}
	})

	for _, tt := range []struct {
		name        string
		contentType string
	}{
		{"grpc", "application/grpc+proto"},
		{"grpc-web", "application/grpc-web+proto"},
		{"connect over HTTP/2", "application/proto"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			body, never := io.Pipe() // a body that never comes
			defer never.Close()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/chat.v1.ChatService/GetGroupInfo", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tt.contentType)
			req.Header.Set("Authorization", "Bearer wrong")
			res, err := h2cClient().Do(req)
			if err != nil {
				t.Fatalf("no answer before the body: %v", err)
			}
			rest, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if got := res.Header.Get("WWW-Authenticate"); got != `Bearer realm="chat"` {
				t.Errorf("WWW-Authenticate header = %q", got)
			}
			if tt.name == "connect over HTTP/2" {
				if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(rest), "unauthenticated") {
					t.Errorf("HTTP %d %s; want 401 unauthenticated", res.StatusCode, rest)
				}
				return
			}
			status := res.Header.Get("Grpc-Status") + res.Trailer.Get("Grpc-Status")
			if res.StatusCode != http.StatusOK || status != "16" {
				t.Errorf("HTTP %d grpc-status %q; want 200 with grpc-status 16 (unauthenticated)", res.StatusCode, status)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestUnauthenticatedGRPCLogsNothing: refusing a gRPC call is not worth a
// log line. WWW-Authenticate used to go out as a gRPC trailer, which HTTP/2
// forbids, and net/http logged a warning for every refused call.
func TestUnauthenticatedGRPCLogsNothing(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	addr := serveLimited(t, testConfig(backends[0].database(t), "secret"), logger)
	for _, opt := range []connect.ClientOption{connect.WithGRPC(), connect.WithGRPCWeb()} {
		client := chatv1connect.NewChatServiceClient(h2cClient(), "http://"+addr, opt)
		for range 3 {
			_, err := client.GetGroupInfo(context.Background(), connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: "g"}))
			wantCode(t, err, connect.CodeUnauthenticated)
		}
	}
	if got := logs.String(); got != "" {
		t.Errorf("refused calls logged:\n%s", got)
	}
}

// TestBodyTimeout: a caller with a valid token that stops sending its body
// half way loses the call after Limits.BodyTimeout: over HTTP/1.1 its
// connection, over HTTP/2 (gRPC) its stream.
func TestBodyTimeout(t *testing.T) {
	cfg := testConfig(backends[0].database(t), "secret")
	cfg.Limits.BodyTimeout = 200 * time.Millisecond
	addr := serveLimited(t, cfg, nil)

	t.Run("HTTP/1.1", func(t *testing.T) {
		conn := rawRequest(t, addr, "Authorization: Bearer secret\r\n", 1000, 10)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				t.Fatalf("HTTP %d %s; want the call to fail", res.StatusCode, body)
			}
			return
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the server still waits for the body after 5 s")
		}
		// The server hung up without an answer: the body timed out.
	})

	t.Run("gRPC over HTTP/2", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		body, w := io.Pipe()
		defer w.Close()
		go func() { _, _ = w.Write([]byte{0, 0, 0, 0, 100}) }() // a 100-byte message that never comes
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/chat.v1.ChatService/GetGroupInfo", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Authorization", "Bearer secret")
		res, err := h2cClient().Do(req)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatal("the server still waits for the body after 5 s")
			}
			return // the stream was reset
		}
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
		if ctx.Err() != nil {
			t.Fatal("the server still waits for the body after 5 s")
		}
		if err == nil && res.Trailer.Get("Grpc-Status") == "0" {
			t.Fatalf("call succeeded without its body")
		}
	})
}

// TestMaxConns: with Limits.MaxConns 2, a third connection is served only
// once one of the first two closes.
func TestMaxConns(t *testing.T) {
	cfg := testConfig(backends[0].database(t))
	cfg.Limits.MaxConns = 2
	addr := serveLimited(t, cfg, nil)
	healthz := func(conn net.Conn) {
		t.Helper()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: chat\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	var conns []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		healthz(conn)
		if res, _ := readResponse(t, conn, 5*time.Second); res.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz = %d", res.StatusCode)
		}
		conns = append(conns, conn) // kept alive, holding a slot
	}
	third, err := net.Dial("tcp", addr) // the kernel accepts it; the server does not yet
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	healthz(third)
	br := bufio.NewReader(third)
	_ = third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("a third connection was served while two were open")
	}
	conns[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("third connection after one closed: %v, %v", res, err)
	}
	res.Body.Close()
}

// TestGzipBombBounded: a small gzip body that inflates far beyond the
// message limit fails with resource_exhausted after inflating just past
// the limit; Connect alone inflated all of it to report its size.
func TestGzipBombBounded(t *testing.T) {
	url := startServer(t, testConfig(backends[0].database(t))).URL
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zeros := make([]byte, 1<<20)
	for range 8 { // 8 MiB of zeros in about 8 KB
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	req, err := http.NewRequest(http.MethodPost, url+"/chat.v1.ChatService/CreateGroup", &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Content-Encoding", "gzip")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "resource_exhausted") {
		t.Fatalf("HTTP %d %s; want resource_exhausted", res.StatusCode, body)
	}
	if strings.Contains(string(body), strconv.Itoa(8<<20)) {
		t.Errorf("the server inflated the whole body to measure it: %s", body)
	}
}

// TestUnauthenticatedMetric: refused requests are counted.
func TestUnauthenticatedMetric(t *testing.T) {
	ts := startServer(t, testConfig(backends[0].database(t), "secret"))
	_, err := newClient(ts, "wrong").GetGroupInfo(context.Background(), connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: "g"}))
	wantCode(t, err, connect.CodeUnauthenticated)
	res, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), "chat_rpc_unauthenticated_total 1") {
		t.Errorf("/metrics lacks chat_rpc_unauthenticated_total 1")
	}
}
