// Package backlog measures how the chat consumer drains a backlog: the real
// programs run as host processes the way a user starts them (nats-server,
// the chat service on SQLite and the chat consumer, each with its
// configuration file), a backlog of activity.created events is published
// while the consumer is down, and then the consumer is started. It reports
// the drain rate over time and the consumer's resident memory, sampled from
// /proc, which must not grow with the backlog.
//
//	go test -run '^$' -bench Backlog -benchtime 1x ./test/backlog/                          # 20,000 events
//	go test -run '^$' -bench Backlog -benchtime 1x ./test/backlog/ -backlog.events=1000000  # 1M
//
// CHAT_BACKLOG_EVENTS sets the size too, and CHAT_BACKLOG_BIN (or
// -backlog.bin) names a directory with prebuilt chat, chatconsumer and
// nats-server programs, to measure another commit's programs.
package backlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/test/internal/hostproc"
)

var (
	events = flag.Int("backlog.events", hostproc.EnvInt("CHAT_BACKLOG_EVENTS", 20000), "how many events the backlog has")
	every  = flag.Duration("backlog.every", 5*time.Second, "how often to report the drain rate and memory")
	binDir = flag.String("backlog.bin", os.Getenv("CHAT_BACKLOG_BIN"), "a directory with prebuilt chat, chatconsumer and nats-server; empty builds this repository's")
)

// stall is how long the drain may go without progress before it fails.
const stall = time.Minute

// BenchmarkBacklog publishes -backlog.events activity.created events while
// the consumer is down, starts it, and reports the events/s of the whole
// drain, the consumer's peak RSS (VmHWM) and its largest sampled VmRSS.
// Each iteration is one whole drain: run it with -benchtime 1x.
func BenchmarkBacklog(b *testing.B) {
	for range b.N {
		drain(b, *events)
	}
}

// startStack starts nats-server and the chat service on SQLite; the
// consumer's configuration is the shipped one's
// (services/chatconsumer/etc/consumer.yaml) against external servers.
func startStack(tb testing.TB) *hostproc.Stack {
	return hostproc.StartStack(tb, hostproc.StackConfig{
		Bin:    *binDir,
		Driver: "sqlite", DSN: filepath.Join(tb.TempDir(), "chat.db"),
		Messaging: map[string]any{"Concurrency": 64, "AckWait": "30s"},
		Notices:   map[string]string{"Created": "{title} created", "Joined": "joined {title}", "Left": "left {title}"},
	})
}

func drain(b *testing.B, n int) {
	s := startStack(b)
	// The consumer creates the streams and durable consumers, then goes
	// down, and the backlog builds up.
	s.StartConsumer(b)
	s.Consumer.Stop()
	js := s.JetStream(b, jetstream.WithPublishAsyncMaxPending(4096))
	began := time.Now()
	publish(b, js, n)
	printf("published %d activity.created events in %s", n, time.Since(began).Round(time.Millisecond))

	b.ResetTimer()
	start := time.Now()
	s.Consumer.Start()
	mem, err := watch(printf, s.Consumer, js, n, start, stall)
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	s.Consumer.Stop()

	if err := checkApplied(js, s.ChatURL, n); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(mem.hwm)/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(mem.maxRSS)/(1<<20), "max-sampled-RSS-MB")
	b.ReportMetric(0, "ns/op")
}

// printf prints a line of progress at once, not when the benchmark ends,
// so that a long drain shows how it goes.
func printf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// activityID names the backlog's i-th activity.
func activityID(i int) string { return fmt.Sprintf("bl_%07d", i) }

// publish publishes n activity.created events with the generated encoding
// and checks that the stream holds every one.
func publish(b testing.TB, js jetstream.JetStream, n int) {
	ctx := context.Background()
	t0 := time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		m, err := eventbus.NewMsg(ctx, activityv1.ActivityCreatedEvent, &activityv1.ActivityCreated{
			ActivityId: activityID(i), CreatorId: "creator_" + strconv.Itoa(i), Title: "Backlog " + strconv.Itoa(i),
			CreatedAt: timestamppb.New(t0.Add(time.Duration(i) * time.Millisecond)),
		})
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err = js.PublishMsgAsync(m)
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				break
			}
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("publishing did not complete")
	}
	st, err := js.Stream(ctx, activityv1.ActivityCreatedStream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if info.State.Msgs != uint64(n) {
		b.Fatalf("the stream holds %d messages, want the %d published", info.State.Msgs, n)
	}
}

// memory is what watch saw of the consumer's memory, in bytes.
type memory struct {
	maxRSS, hwm int64
}

// watch samples the consumer's progress and memory every second until it
// has handled all n events, logging the drain rate with logf every
// -backlog.every. It
// fails when the consumer exits or handles nothing for stall.
func watch(logf func(format string, args ...any), consumer *hostproc.Proc, js jetstream.JetStream, n int, start time.Time, stall time.Duration) (memory, error) {
	var mem memory
	tick := time.NewTicker(min(time.Second, stall/4))
	defer tick.Stop()
	lastDone, lastReport, lastProgress := 0, start, start
	reportedDone := 0
	for {
		select {
		case <-consumer.Exited():
			return mem, fmt.Errorf("the consumer exited while draining (%d of %d events handled)", lastDone, n)
		case now := <-tick.C:
			status, err := procStatus(consumer.Pid())
			if err != nil {
				return mem, fmt.Errorf("the consumer's memory: %w", err)
			}
			mem.maxRSS = max(mem.maxRSS, status["VmRSS"])
			left, err := outstanding(js)
			if err != nil {
				return mem, fmt.Errorf("the consumer's progress: %w", err)
			}
			done := n - left
			if done != lastDone {
				lastDone, lastProgress = done, now
			} else if now.Sub(lastProgress) > stall {
				return mem, fmt.Errorf("no event handled for %s: %d of %d left", stall, left, n)
			}
			if left == 0 || now.Sub(lastReport) >= *every {
				rate := float64(done-reportedDone) / now.Sub(lastReport).Seconds()
				logf("%6s %8d handled %8.0f events/s  VmRSS %5.1f MB", now.Sub(start).Round(time.Second), done, rate, float64(status["VmRSS"])/(1<<20))
				lastReport, reportedDone = now, done
			}
			if left == 0 {
				mem.hwm = status["VmHWM"]
				return mem, nil
			}
		}
	}
}

// outstanding returns how many messages the activity stream's durable
// consumers have not delivered or not seen acknowledged yet.
func outstanding(js jetstream.JetStream) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, activityv1.ActivityCreatedStream)
	if err != nil {
		return 0, err
	}
	lister := st.ListConsumers(ctx)
	left, consumers := 0, 0
	for info := range lister.Info() {
		consumers++
		left += int(info.NumPending) + info.NumAckPending
	}
	if err := lister.Err(); err != nil {
		return 0, err
	}
	if consumers == 0 {
		return 0, errors.New("the activity stream has no consumer")
	}
	return left, nil
}

// procStatus returns the memory lines (Vm*) of /proc/<pid>/status, in bytes.
func procStatus(pid int) (map[string]int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var key string
		var kb int64
		if _, err := fmt.Sscanf(sc.Text(), "%s %d kB", &key, &kb); err == nil && len(key) > 1 {
			out[key[:len(key)-1]] = kb << 10
		}
	}
	if _, ok := out["VmRSS"]; !ok {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return out, nil
}

// checkApplied fails when an event was dead-lettered or when one of up to
// 2,000 evenly spread activities, the last among them, has no group owned
// by its creator.
func checkApplied(js jetstream.JetStream, chatURL string, n int) error {
	ctx := context.Background()
	if st, err := js.Stream(ctx, eventbus.DLQStream(activityv1.ActivityCreatedStream)); err == nil {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("%d events dead-lettered", info.State.Msgs)
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}

	client := chatv1connect.NewChatServiceClient(http.DefaultClient, chatURL)
	step := max(1, n/2000)
	var next atomic.Int64
	var missing atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := int(next.Add(1) - 1); k*step < n; k = int(next.Add(1) - 1) {
				i := min(k*step+step-1, n-1)
				res, err := client.GetGroupByActivityId(ctx, connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{ActivityId: activityID(i)}))
				if err == nil && res.Msg.GetGroup().GetOwnerId() != "creator_"+strconv.Itoa(i) {
					err = fmt.Errorf("owner %q", res.Msg.GetGroup().GetOwnerId())
				}
				if err != nil {
					missing.Add(1)
					once.Do(func() { firstErr = fmt.Errorf("%s: %w", activityID(i), err) })
				}
			}
		})
	}
	wg.Wait()
	if m := missing.Load(); m != 0 {
		return fmt.Errorf("%d sampled activities have no group or a wrong one, first %w", m, firstErr)
	}
	return nil
}
