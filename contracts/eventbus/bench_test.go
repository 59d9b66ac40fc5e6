package eventbus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// BenchmarkConsume compares the eventbus consume path (decode, validate,
// typed handler, ack) with raw nats.go consume+ack, on one embedded server
// with a file store, for the same events: JSON and binary, at concurrency 1
// and the default, with the per-event log line off (level warn), and JSON
// with it on (info, to io.Discard).
//
// Every variant is timed from its first message to its last, so neither the
// consumer's creation nor the router's provisioning counts. Each reports
// msgs/s and the process's CPU time per message (the embedded server's
// included), and each eventbus variant its ratio to raw in the same run:
// ratio (msgs/s) and cpu-ratio (raw's CPU per message over its own), so
// 1 means as fast as raw nats.go. Set EVENTBUS_BENCH_CPUPROFILE to a file
// name prefix to profile the timed part of each variant
// (<prefix>-<variant>.pprof).
func BenchmarkConsume(b *testing.B) {
	_, js := runServer(b)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: testpbv1.PingStream, Subjects: []string{testpbv1.PingSubject, testpbv1.PongSubject},
	}); err != nil {
		b.Fatal(err)
	}
	stream, err := js.Stream(ctx, testpbv1.PingStream)
	if err != nil {
		b.Fatal(err)
	}
	// fill empties the stream and its consumers and publishes n events.
	fills := 0
	fill := func(b *testing.B, n int, opts ...eventbus.PublishOption) {
		b.Helper()
		fills++
		if err := stream.Purge(ctx); err != nil {
			b.Fatal(err)
		}
		for name := range stream.ConsumerNames(ctx).Name() {
			if err := stream.DeleteConsumer(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
		for i := range n {
			msg, err := eventbus.NewMsg(ctx, testpbv1.PingEvent, ping(fmt.Sprintf("bench-%d", i)), append(opts, eventbus.WithMsgID(fmt.Sprintf("%d-%d", fills, i)))...)
			if err != nil {
				b.Fatal(err)
			}
			// A loaded machine acks slowly: wait for room rather than fail.
			if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
				b.Fatal(err)
			}
			if i%1000 == 999 {
				// Bound the async window: a loaded machine stalls a
				// larger one.
				<-js.PublishAsyncComplete()
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publish timed out")
		}
	}

	var raw consumeRate // raw's figures in this run, for the ratios
	b.Run("raw", func(b *testing.B) {
		fill(b, b.N)
		cons, err := js.CreateOrUpdateConsumer(ctx, testpbv1.PingStream, jetstream.ConsumerConfig{
			Durable: "raw", FilterSubject: testpbv1.PingSubject,
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1024,
		})
		if err != nil {
			b.Fatal(err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(128))
		if err != nil {
			b.Fatal(err)
		}
		defer it.Stop()
		w := newConsumeWindow(b, "raw", b.N)
		for range b.N {
			msg, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			if err := msg.Ack(); err != nil {
				b.Fatal(err)
			}
			w.handled()
		}
		raw = w.report(b, consumeRate{})
	})

	for _, v := range []struct {
		name        string
		level       slog.Level
		concurrency int // 0: the default
		encode      []eventbus.PublishOption
	}{
		{"eventbus-json-c1", slog.LevelWarn, 1, nil},
		{"eventbus-json", slog.LevelWarn, 0, nil},
		{"eventbus-proto-c1", slog.LevelWarn, 1, []eventbus.PublishOption{eventbus.WithBinary()}},
		{"eventbus-proto", slog.LevelWarn, 0, []eventbus.PublishOption{eventbus.WithBinary()}},
		{"eventbus-json-logged", slog.LevelInfo, 0, nil},
	} {
		b.Run(v.name, func(b *testing.B) {
			fill(b, b.N, v.encode...)
			r := eventbus.NewRouter(js, eventbus.WithoutDeadLetters(),
				eventbus.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: v.level}))))
			var opts []eventbus.SubscribeOption
			if v.concurrency > 0 {
				opts = append(opts, eventbus.WithConcurrency(v.concurrency))
			}
			w := newConsumeWindow(b, v.name, b.N)
			testpbv1.SubscribePing(r, func(context.Context, *testpbv1.Ping, eventbus.Meta) error {
				w.handled()
				return nil
			}, opts...)
			rctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() { errc <- r.Run(rctx) }()
			select {
			case <-w.done:
			case err := <-errc:
				b.Fatalf("router stopped: %v", err)
			}
			w.report(b, raw)
			cancel()
			<-errc
		})
	}
}

// consumeRate is what one variant measured.
type consumeRate struct {
	perSec   float64 // messages per second
	cpuPerNs float64 // CPU nanoseconds per message
}

// consumeWindow times a variant from its first message to its last: the
// first handled message starts the clock, the CPU count and the profile,
// the last stops them. It is safe for concurrent handlers.
type consumeWindow struct {
	name string
	n    int

	mu       sync.Mutex
	count    int
	start    time.Time
	cpuStart time.Duration
	elapsed  time.Duration
	cpu      time.Duration
	profile  *os.File
	done     chan struct{}
}

func newConsumeWindow(b *testing.B, name string, n int) *consumeWindow {
	b.StopTimer() // the fill and the set-up are not timed; the window is
	return &consumeWindow{name: name, n: n, done: make(chan struct{})}
}

// handled counts one message.
func (w *consumeWindow) handled() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.count++
	if w.count == 1 {
		w.startProfile()
		w.start, w.cpuStart = time.Now(), processCPU()
	}
	if w.count == w.n {
		w.elapsed, w.cpu = time.Since(w.start), processCPU()-w.cpuStart
		if w.profile != nil {
			pprof.StopCPUProfile()
			_ = w.profile.Close()
		}
		close(w.done)
	}
}

func (w *consumeWindow) startProfile() {
	prefix := os.Getenv("EVENTBUS_BENCH_CPUPROFILE")
	if prefix == "" || w.n < 1000 {
		return
	}
	f, err := os.Create(prefix + "-" + w.name + ".pprof")
	if err != nil {
		return
	}
	if pprof.StartCPUProfile(f) != nil {
		_ = f.Close()
		return
	}
	w.profile = f
}

// report reports the window's figures, and their ratios to raw's unless
// raw is zero, and returns them.
func (w *consumeWindow) report(b *testing.B, raw consumeRate) consumeRate {
	<-w.done
	msgs := float64(w.n - 1) // the window spans n-1 intervals
	if msgs < 1 || w.elapsed <= 0 {
		return consumeRate{}
	}
	r := consumeRate{perSec: msgs / w.elapsed.Seconds(), cpuPerNs: float64(w.cpu.Nanoseconds()) / msgs}
	b.ReportMetric(r.perSec, "msgs/s")
	b.ReportMetric(r.cpuPerNs, "cpu-ns/msg")
	if raw.perSec > 0 && r.cpuPerNs > 0 {
		b.ReportMetric(r.perSec/raw.perSec, "ratio")
		b.ReportMetric(raw.cpuPerNs/r.cpuPerNs, "cpu-ratio")
	}
	b.ReportMetric(0, "ns/op") // the window's figures replace the timer's
	return r
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
