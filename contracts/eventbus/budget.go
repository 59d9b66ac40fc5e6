package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The retry budget counts handler failures, and nothing else, per durable
// consumer and stream sequence. JetStream's delivery count cannot serve: it
// also grows with every drain, restart, crash and ack-wait expiry. The
// counts live in a key-value bucket per stream, so they survive restarts and
// are shared by the replicas of a service. A count is read only on a
// redelivery, written only after a failure and deleted after the message's
// final outcome, so the first delivery of a message that succeeds never
// touches the bucket.

// budgetTTL bounds how long a failure count is kept. A count outlives the
// message's retries only when its final outcome was never recorded (the
// process died between the outcome and the delete, or the message left its
// stream); losing a count early only means more retries, never fewer.
const budgetTTL = 7 * 24 * time.Hour

// budgetTimeout bounds one read or write of a failure count.
const budgetTimeout = 5 * time.Second

// BudgetBucket returns the name of the key-value bucket that holds the
// handler-failure counts of the consumers of stream.
func BudgetBucket(stream string) string { return stream + "_RETRIES" }

// ensureBudget creates or updates the failure-count bucket of stream.
func ensureBudget(ctx context.Context, js jetstream.JetStream, stream string, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BudgetBucket(stream),
		Description: "handler failures per consumer and sequence of " + stream + ": the eventbus retry budget",
		History:     1,
		TTL:         budgetTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("eventbus: retry budget bucket of %s: %w", stream, err)
	}
	return kv, nil
}

// budgetKey returns the key of the failure count of seq for consumer:
// "<consumer>.<seq>", with the characters keys cannot hold as '_'.
func budgetKey(consumer string, seq uint64) string {
	c := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=':
			return r
		}
		return '_'
	}, consumer)
	return c + "." + strconv.FormatUint(seq, 10)
}

// loadFailures returns the handler failures recorded for d's message.
func (s *subscription) loadFailures(d *delivery) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), budgetTimeout)
	defer cancel()
	e, err := s.budgetKV().Get(ctx, budgetKey(d.meta.Consumer, d.meta.StreamSeq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(e.Value()))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("eventbus: bad failure count %q", e.Value())
	}
	return n, nil
}

// storeFailures records n handler failures for d's message.
func (s *subscription) storeFailures(d *delivery, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), budgetTimeout)
	defer cancel()
	_, err := s.budgetKV().Put(ctx, budgetKey(d.meta.Consumer, d.meta.StreamSeq), []byte(strconv.Itoa(n)))
	return err
}

// forgetFailures deletes the failure count of d's message after its final
// outcome, when there is one.
func (s *subscription) forgetFailures(d *delivery) {
	if d.failures == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), budgetTimeout)
	defer cancel()
	if err := s.budgetKV().Delete(ctx, budgetKey(d.meta.Consumer, d.meta.StreamSeq)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.log.Warn("cannot delete a failure count; it expires on its own",
			"stream_seq", d.meta.StreamSeq, "error", err)
	}
}
