package eventbus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// BenchmarkConsume compares the eventbus consume path (decode, validate,
// typed handler, ack) with raw nats.go consume+ack, on one embedded server
// with a file store, for the same events: JSON and binary, with the
// per-event log line off (level warn) and on (info, to io.Discard). Compare
// the msgs/s metrics.
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
	// The process's CPU time per message (the embedded server's included)
	// is reported next to the rate: on a shared machine it varies far
	// less than wall-clock throughput.
	var cpuStart time.Duration
	startCPU := func() { cpuStart = cpuTime(b) }
	report := func(b *testing.B, elapsed time.Duration) {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64((cpuTime(b)-cpuStart).Nanoseconds())/float64(b.N), "cpu-ns/msg")
	}

	b.Run("raw", func(b *testing.B) {
		fill(b, b.N)
		cons, err := js.CreateOrUpdateConsumer(ctx, testpbv1.PingStream, jetstream.ConsumerConfig{
			Durable: "raw", FilterSubject: testpbv1.PingSubject,
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1024,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		startCPU()
		start := time.Now()
		it, err := cons.Messages(jetstream.PullMaxMessages(128))
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			msg, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			if err := msg.Ack(); err != nil {
				b.Fatal(err)
			}
		}
		report(b, time.Since(start))
		it.Stop()
	})

	for _, v := range []struct {
		name   string
		level  slog.Level
		encode []eventbus.PublishOption
	}{
		{"eventbus-json", slog.LevelWarn, nil},
		{"eventbus-proto", slog.LevelWarn, []eventbus.PublishOption{eventbus.WithBinary()}},
		{"eventbus-json-logged", slog.LevelInfo, nil},
	} {
		name, level := v.name, v.level
		b.Run(name, func(b *testing.B) {
			fill(b, b.N, v.encode...)
			var handled atomic.Int64
			done := make(chan struct{})
			n := int64(b.N)
			r := eventbus.NewRouter(js, eventbus.WithoutDeadLetters(),
				eventbus.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))))
			testpbv1.SubscribePing(r, func(context.Context, *testpbv1.Ping, eventbus.Meta) error {
				if handled.Add(1) == n {
					close(done)
				}
				return nil
			})
			b.ResetTimer()
			startCPU()
			start := time.Now()
			rctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() { errc <- r.Run(rctx) }()
			select {
			case <-done:
			case err := <-errc:
				b.Fatalf("router stopped: %v", err)
			}
			report(b, time.Since(start))
			b.StopTimer()
			cancel()
			<-errc
		})
	}
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
