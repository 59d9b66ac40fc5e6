// Command chatload puts a chat service on loopback under the load of clients
// without a token, and measures what that costs the server and the callers
// that have one:
//
//   - slow-body clients: raw TCP connections that each announce a 1 MiB
//     Connect JSON body and trickle it (16 KiB every 100 ms), then hold the
//     last byte back until the run ends; a client whose connection the
//     server closes connects again after -reconnect;
//   - gzip-bomb clients: each posts, in a loop, a Connect binary request
//     whose gzip body of about 970 KB inflates to 1 GB of zeros;
//   - authenticated clients: call GetGroupInfo with the token in a loop and
//     record each call's latency.
//
// Every second it samples the server process's resident set size and CPU
// time from /proc/<pid>. It runs a quiet phase first (authenticated calls
// only) and then the load phase, and prints both phases' figures.
//
//	go run ./services/chat/cmd/chatload -addr 127.0.0.1:8080 -token s3cret \
//	    -pid $(pgrep -n chat) -slow 400 -bombs 16 -duration 30s
//
// It only connects to loopback addresses and stops after -quiet plus
// -duration.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "the chat service's host:port (loopback only)")
	token := flag.String("token", "", "the bearer token of the authenticated clients")
	pid := flag.Int("pid", 0, "the server's process id, to sample its RSS and CPU (0: do not sample)")
	slow := flag.Int("slow", 0, "slow-body connections without a token")
	bombs := flag.Int("bombs", 0, "gzip-bomb clients without a token")
	authClients := flag.Int("auth", 4, "authenticated clients")
	quiet := flag.Duration("quiet", 5*time.Second, "the quiet phase, before the load")
	duration := flag.Duration("duration", 30*time.Second, "the load phase")
	flag.BoolVar(&bombToken, "bomb-token", false, "send the token with the gzip bombs too, to load the decompression rather than the token check")
	flag.DurationVar(&reconnectDelay, "reconnect", time.Second, "how long a slow-body client waits to connect again after the server hung up")
	flag.Parse()
	if err := run(*addr, *token, *pid, *slow, *bombs, *authClients, *quiet, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		os.Exit(1)
	}
}

// reconnectDelay is the -reconnect flag.
var reconnectDelay time.Duration

// bombToken is the -bomb-token flag; the token is the -token flag.
var (
	bombToken bool
	token     string
)

func run(addr, tok string, pid, slow, bombs, authClients int, quiet, duration time.Duration) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	if slow > 2000 || bombs > 200 || authClients > 64 || duration > 10*time.Minute {
		return errors.New("counts or duration beyond the program's bounds (2000 slow, 200 bombs, 64 auth, 10m)")
	}
	base := "http://" + addr
	token = tok

	client := chatv1connect.NewChatServiceClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: authClients}}, base,
		connect.WithInterceptors(bearer(tok)))
	ctx := context.Background()
	g, err := client.CreateGroup(ctx, connect.NewRequest(&chatv1.CreateGroupRequest{ActivityId: "act_chatload", OwnerId: "owner", Name: "chatload"}))
	if err != nil {
		return fmt.Errorf("authenticated CreateGroup: %w", err)
	}
	groupID := g.Msg.GetGroup().GetGroupId()

	var bomb []byte
	if bombs > 0 {
		bomb = gzipBomb(1_000_000_000)
		fmt.Printf("gzip bomb: %d bytes inflating to 1000000000\n", len(bomb))
	}

	fmt.Printf("quiet phase %v\n", quiet)
	qs := newSampler(pid)
	lat := measureAuth(client, groupID, authClients, quiet)
	qs.report("quiet")
	report("quiet", lat)

	fmt.Printf("load phase %v: %d slow-body connections, %d gzip-bomb clients\n", duration, slow, bombs)
	loadCtx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	var wg sync.WaitGroup
	var stats loadStats
	for range slow {
		wg.Go(func() { slowBody(loadCtx, addr, &stats) })
	}
	for range bombs {
		wg.Go(func() { gzipBombClient(loadCtx, base, bomb, &stats) })
	}
	ls := newSampler(pid)
	lat = measureAuth(client, groupID, authClients, duration)
	cancel()
	wg.Wait()
	ls.report("load")
	report("load", lat)
	fmt.Printf("load: slow-body connects %d, server ended %d of them before the body was sent; bomb requests %d, answers %s\n",
		stats.slowConnects.Load(), stats.slowCut.Load(), stats.bombRequests.Load(), stats.bombAnswers())
	return nil
}

// bearer sends "Authorization: Bearer <token>" when token is set.
func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" {
				req.Header().Set("Authorization", "Bearer "+token)
			}
			return next(ctx, req)
		}
	}
}

// measureAuth runs n authenticated clients for d and returns every call's
// latency, failed calls included.
func measureAuth(client chatv1connect.ChatServiceClient, groupID string, n int, d time.Duration) []time.Duration {
	deadline := time.Now().Add(d)
	lat := make([][]time.Duration, n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				_, err := client.GetGroupInfo(ctx, connect.NewRequest(&chatv1.GetGroupInfoRequest{GroupId: groupID}))
				lat[i] = append(lat[i], time.Since(start))
				cancel()
				if err != nil {
					failed.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		fmt.Printf("authenticated calls failed: %d\n", f)
	}
	return slices.Concat(lat...)
}

func report(phase string, lat []time.Duration) {
	if len(lat) == 0 {
		fmt.Printf("%s: no authenticated calls\n", phase)
		return
	}
	slices.Sort(lat)
	q := func(p int) time.Duration { return lat[min(len(lat)-1, len(lat)*p/100)] }
	fmt.Printf("%s: authenticated calls %d, p50 %v, p99 %v, max %v\n", phase, len(lat),
		q(50).Round(10*time.Microsecond), q(99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
}

type loadStats struct {
	slowConnects, slowCut, bombRequests atomic.Int64
	mu                                  sync.Mutex
	answers                             map[string]int
}

func (s *loadStats) answer(a string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answers == nil {
		s.answers = map[string]int{}
	}
	s.answers[a]++
}

func (s *loadStats) bombAnswers() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for k, v := range s.answers {
		parts = append(parts, fmt.Sprintf("%s x%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// slowBody keeps one connection trickling a 1 MiB body without a token
// until ctx is done, connecting again when the server hangs up.
func slowBody(ctx context.Context, addr string, stats *loadStats) {
	const size = 1 << 20
	chunk := bytes.Repeat([]byte(" "), 16<<10)
	for ctx.Err() == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		stats.slowConnects.Add(1)
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() }) // unblocks the writes; nothing to report
		head := "POST /chat.v1.ChatService/CreateGroup HTTP/1.1\r\nHost: " + addr +
			"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n{"
		_, err = io.WriteString(conn, head)
		sent := 1
		for err == nil && ctx.Err() == nil && sent < size-1 {
			n := min(len(chunk), size-1-sent)
			_, err = conn.Write(chunk[:n])
			sent += n
			if err == nil {
				sleep(ctx, 100*time.Millisecond)
			}
		}
		if err == nil && ctx.Err() == nil {
			// Hold the last byte back; wait for the server to give up.
			_, err = conn.Read(make([]byte, 1))
			for err == nil {
				_, err = conn.Read(make([]byte, 4096))
			}
		}
		if ctx.Err() == nil {
			stats.slowCut.Add(1)
		}
		stop()
		_ = conn.Close() // the server may have cut it already: that is the point
		sleep(ctx, reconnectDelay)
	}
}

// gzipBombClient posts the bomb without a token until ctx is done.
func gzipBombClient(ctx context.Context, base string, bomb []byte, stats *loadStats) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat.v1.ChatService/CreateGroup", bytes.NewReader(bomb))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Content-Encoding", "gzip")
		if bombToken {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		stats.bombRequests.Add(1)
		res, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				stats.answer("error")
				sleep(ctx, 50*time.Millisecond)
			}
			continue
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close() // drained; the status is what is counted
		stats.answer(strconv.Itoa(res.StatusCode))
	}
}

// gzipBomb returns n zero bytes, gzipped.
func gzipBomb(n int) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(zeros))
		_, _ = zw.Write(zeros[:k])
		n -= k
	}
	_ = zw.Close()
	return buf.Bytes()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sampler samples a process's RSS and CPU time once a second.
type sampler struct {
	pid     int
	start   time.Time
	cpu0    float64
	mu      sync.Mutex
	maxRSS  int64
	sumRSS  int64
	samples int
	done    chan struct{}
}

func newSampler(pid int) *sampler {
	s := &sampler{pid: pid, start: time.Now(), done: make(chan struct{})}
	if pid == 0 {
		return s
	}
	s.cpu0, _ = cpuSeconds(pid)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				if rss, err := rssKB(pid); err == nil {
					s.mu.Lock()
					s.maxRSS = max(s.maxRSS, rss)
					s.sumRSS += rss
					s.samples++
					s.mu.Unlock()
				}
			}
		}
	}()
	return s
}

func (s *sampler) report(phase string) {
	if s.pid == 0 {
		return
	}
	close(s.done)
	cpu, _ := cpuSeconds(s.pid)
	wall := time.Since(s.start).Seconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	avg := int64(0)
	if s.samples > 0 {
		avg = s.sumRSS / int64(s.samples)
	}
	rss, _ := rssKB(s.pid)
	fmt.Printf("%s: server CPU %.0f%% of one core (%.1f s in %.1f s), RSS max %d MB, mean %d MB, at end %d MB\n",
		phase, 100*(cpu-s.cpu0)/wall, cpu-s.cpu0, wall, s.maxRSS>>10, avg>>10, rss>>10)
}

func rssKB(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

// cpuSeconds returns the process's user plus system time, assuming the
// usual 100 clock ticks per second.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields after it start after ')'.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100, nil
}
