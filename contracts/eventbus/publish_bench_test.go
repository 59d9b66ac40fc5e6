package eventbus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// publishCases are the ways a producer encodes an event: JSON or binary,
// with the content-derived Nats-Msg-Id or one of its own.
var publishCases = []struct {
	name string
	opts func(i int) []eventbus.PublishOption
}{
	{"json", func(int) []eventbus.PublishOption { return nil }},
	{"json/msgid", func(i int) []eventbus.PublishOption {
		return []eventbus.PublishOption{eventbus.WithMsgID("outbox-" + strconv.Itoa(i))}
	}},
	{"binary", func(int) []eventbus.PublishOption { return []eventbus.PublishOption{eventbus.WithBinary()} }},
	{"binary/msgid", func(i int) []eventbus.PublishOption {
		return []eventbus.PublishOption{eventbus.WithBinary(), eventbus.WithMsgID("outbox-" + strconv.Itoa(i))}
	}},
}

// BenchmarkNewMsg measures what a producer spends per event before the
// network: validation, encoding, the message id and the headers, inside a
// traced context as the consumer's handlers publish. The options are built
// outside the timed loop, as a producer's outbox row id is.
func BenchmarkNewMsg(b *testing.B) {
	ctx := eventbus.ContextWithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ev := ping("bench-1")
	for _, c := range publishCases {
		opts := c.opts(1)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eventbus.NewMsg(ctx, testpbv1.PingEvent, ev, opts...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublish publishes distinct events to an embedded server with a
// file store: one at a time with Publish, which waits for each
// acknowledgement, and in bulk with NewMsg and PublishMsgAsync. It reports
// msgs/s and the process's CPU time per message, the server's included.
func BenchmarkPublish(b *testing.B) {
	_, js := runServer(b)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: testpbv1.PingStream, Subjects: []string{testpbv1.PingSubject},
	}); err != nil {
		b.Fatal(err)
	}
	sentAt := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	// event returns the i-th of distinct events: the default id is derived
	// from the content, and a repeat would be dropped as a duplicate.
	event := func(i int) *testpbv1.Ping {
		ev := ping("bench-" + strconv.Itoa(i))
		ev.SentAt.Seconds = sentAt.Unix() + int64(i)
		return ev
	}
	seq := 0
	run := func(b *testing.B, publish func(i int)) {
		b.ReportAllocs()
		start, cpuStart := time.Now(), processCPU()
		for b.Loop() {
			seq++
			publish(seq)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publish timed out")
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		b.ReportMetric(float64((processCPU()-cpuStart).Nanoseconds())/float64(b.N), "cpu-ns/msg")
	}
	for _, c := range []string{"json", "binary"} {
		var opts []eventbus.PublishOption
		if c == "binary" {
			opts = []eventbus.PublishOption{eventbus.WithBinary()}
		}
		b.Run("sync/"+c, func(b *testing.B) {
			run(b, func(i int) {
				if _, err := testpbv1.PublishPing(ctx, js, event(i), opts...); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("async/"+c, func(b *testing.B) {
			run(b, func(i int) {
				msg, err := eventbus.NewMsg(ctx, testpbv1.PingEvent, event(i), opts...)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
