// Package testwait is how the tests of the services module wait for a
// condition: a metric, a consumer's info, a row. No test sleeps for a
// fixed time to wait for something to happen.
package testwait

import (
	"errors"
	"testing"
	"time"
)

// ErrNotYet is a convenience error for Eventually conditions.
var ErrNotYet = errors.New("not yet")

// Eventually calls cond every 50ms until it returns nil or timeout passes,
// then fails t with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
