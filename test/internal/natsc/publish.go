package natsc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishRetry publishes msg through js until the stream acknowledges it or
// ctx ends, each attempt bounded by attempt. msg must carry a Nats-Msg-Id
// header: a retry of a message the stream stored although its
// acknowledgement was lost is then acknowledged as a duplicate and stored
// once. It returns the acknowledgement and how many attempts it took.
func PublishRetry(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, attempt time.Duration) (*jetstream.PubAck, int, error) {
	if msg.Header.Get(nats.MsgIdHdr) == "" {
		return nil, 0, errors.New("PublishRetry needs a Nats-Msg-Id header")
	}
	backoff := 50 * time.Millisecond
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, attempt)
		ack, err := js.PublishMsg(actx, msg)
		cancel()
		if err == nil {
			return ack, n, nil
		}
		select {
		case <-ctx.Done():
			return nil, n, fmt.Errorf("publish %s after %d attempts: %w (last error: %v)",
				msg.Header.Get(nats.MsgIdHdr), n, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// Retry calls fn, each call bounded by attempt, until it returns nil or ctx
// ends. JetStream API requests wait for their context's deadline when no
// server answers, as happens to a request in flight while a leader dies;
// bounding each attempt keeps one lost request from using up a test's time.
func Retry(ctx context.Context, attempt time.Duration, fn func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
