package eventbus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// BenchmarkConsume compares the eventbus consume path (decode, validate,
// typed handler, ack) with raw nats.go consume+ack, on one embedded server
// with a file store, for the same JSON events. Compare the msgs/s metrics.
func BenchmarkConsume(b *testing.B) {
	_, js := runServer(b)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: testpbv1.PingStream, Subjects: []string{testpbv1.PingSubject, testpbv1.PongSubject},
	}); err != nil {
		b.Fatal(err)
	}
	publish := func(b *testing.B, n int) {
		b.Helper()
		for i := range n {
			msg, err := eventbus.NewMsg(ctx, testpbv1.PingEvent, ping(fmt.Sprintf("bench-%d", i)), eventbus.WithMsgID(fmt.Sprintf("%s-%d-%d", b.Name(), n, i)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := js.PublishMsgAsync(msg); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publish timed out")
		}
	}
	run := 0
	report := func(b *testing.B, elapsed time.Duration) {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	}

	b.Run("raw", func(b *testing.B) {
		run++
		publish(b, b.N)
		cons, err := js.CreateOrUpdateConsumer(ctx, testpbv1.PingStream, jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("raw-%d", run), FilterSubject: testpbv1.PingSubject,
			AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		if err != nil {
			b.Fatal(err)
		}
		_ = cons
		// DeliverNew skips what is there: start from the first message published by this run.
		info, _ := js.Stream(ctx, testpbv1.PingStream)
		first := info.CachedInfo().State.LastSeq - uint64(b.N) + 1
		if err := js.DeleteConsumer(ctx, testpbv1.PingStream, fmt.Sprintf("raw-%d", run)); err != nil {
			b.Fatal(err)
		}
		cons, err = js.CreateOrUpdateConsumer(ctx, testpbv1.PingStream, jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("raw-%d", run), FilterSubject: testpbv1.PingSubject,
			AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first,
			MaxAckPending: 1024,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
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

	for _, logged := range []bool{false, true} {
		name := "eventbus"
		level := slog.LevelWarn
		if logged {
			name, level = "eventbus-logging", slog.LevelInfo
		}
		b.Run(name, func(b *testing.B) {
			run++
			publish(b, b.N)
			stream, _ := js.Stream(ctx, testpbv1.PingStream)
			first := stream.CachedInfo().State.LastSeq - uint64(b.N) + 1
			var handled atomic.Int64
			done := make(chan struct{})
			n := int64(b.N)
			r := eventbus.NewRouter(js, eventbus.WithoutDeadLetters(),
				eventbus.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))))
			testpbv1.SubscribePing(r, func(_ context.Context, ev *testpbv1.Ping, meta eventbus.Meta) error {
				if meta.StreamSeq >= first && handled.Add(1) == n {
					close(done)
				}
				return nil
			}, eventbus.WithDurable(fmt.Sprintf("bus-%d", run)))
			// Start the durable at this run's first message.
			if _, err := js.CreateOrUpdateConsumer(ctx, testpbv1.PingStream, jetstream.ConsumerConfig{
				Durable: fmt.Sprintf("bus-%d", run), FilterSubject: testpbv1.PingSubject,
				AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first,
				AckWait: 30 * time.Second, MaxDeliver: 4, MaxAckPending: 1024,
			}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			rctx, cancel := context.WithCancel(ctx)
			go func() { _ = r.Run(rctx) }()
			<-done
			report(b, time.Since(start))
			b.StopTimer()
			cancel()
		})
	}
}
