package harness

import (
	"context"
	"testing"
	"time"
)

// AttemptTimeout bounds one call of an Eventually condition. A JetStream
// API request that no server answers (one in flight while a leader dies)
// waits for its context's deadline, so no attempt gets a whole test's time.
const AttemptTimeout = 10 * time.Second

// Eventually calls cond until it returns nil, every 250 ms, for at most
// timeout, each call bounded by AttemptTimeout, and fails t with what and
// cond's last error otherwise. It returns how long it took. It is the one
// way the tests of this module wait for a condition: never a fixed sleep.
func Eventually(t testing.TB, ctx context.Context, timeout time.Duration, what string, cond func(context.Context) error) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		actx, acancel := context.WithTimeout(ctx, AttemptTimeout)
		last = cond(actx)
		acancel()
		if last == nil {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not so after %s: %v", what, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
