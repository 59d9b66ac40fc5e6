package eventbus

import (
	"fmt"
	"math"
	"time"
)

// Retry is the retry policy of a subscription. Its zero value means
// DefaultRetry.
type Retry struct {
	// MaxRetries is how often a message whose handler failed is retried:
	// the message is dead-lettered when its handler fails for the
	// MaxRetries+1st time. Only handler failures count; see the package
	// documentation.
	MaxRetries int
	// InitialInterval is the delay before the first retry.
	InitialInterval time.Duration
	// MaxInterval caps the delay.
	MaxInterval time.Duration
	// Multiplier grows the delay from one retry to the next.
	Multiplier float64
	// MaxHold is how long a NotReady message is parked and retried, with
	// the same backoff, before its NotReady answers count as handler
	// failures. It is counted per delivery: a restart starts it again.
	MaxHold time.Duration
}

// DefaultRetry is the seed's policy: 3 retries, 100ms doubling up to 10s; a
// NotReady message waits for up to 2 minutes.
var DefaultRetry = Retry{
	MaxRetries:      3,
	InitialInterval: 100 * time.Millisecond,
	MaxInterval:     10 * time.Second,
	Multiplier:      2.0,
	MaxHold:         2 * time.Minute,
}

// Check reports the first field of r that is out of range.
func (r Retry) Check() error {
	switch {
	case r.MaxRetries < 0 || r.MaxRetries > 1000:
		return fmt.Errorf("MaxRetries must be between 0 and 1000, got %d", r.MaxRetries)
	case r.InitialInterval <= 0:
		return fmt.Errorf("InitialInterval must be positive, got %s", r.InitialInterval)
	case r.MaxInterval < r.InitialInterval:
		return fmt.Errorf("MaxInterval (%s) must not be less than InitialInterval (%s)", r.MaxInterval, r.InitialInterval)
	case r.Multiplier < 1 || math.IsInf(r.Multiplier, 0) || math.IsNaN(r.Multiplier):
		return fmt.Errorf("Multiplier must be at least 1, got %v", r.Multiplier)
	case r.MaxHold < 0:
		return fmt.Errorf("MaxHold must not be negative, got %s", r.MaxHold)
	}
	return nil
}

// Backoff returns the delay before retry number n, counting from 1:
// InitialInterval * Multiplier^(n-1), capped at MaxInterval.
func (r Retry) Backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(r.InitialInterval) * math.Pow(r.Multiplier, float64(n-1))
	if d > float64(r.MaxInterval) || math.IsInf(d, 0) {
		return r.MaxInterval
	}
	return time.Duration(d)
}

// orDefault returns r, or DefaultRetry for the zero value.
func (r Retry) orDefault() Retry {
	if r == (Retry{}) {
		return DefaultRetry
	}
	return r
}
