package eventbus

import (
	"fmt"
	"time"
)

// RetryOverride changes some fields of a subscription's retry policy and
// keeps the others: a nil field leaves the value the subscription already
// has, which is the event contract's Policy when the contract declares one,
// else the router's retry policy. It is how a deployment's configuration
// overrides the policy written in the proto without restating all of it.
type RetryOverride struct {
	// MaxRetries, when set, replaces Retry.MaxRetries.
	MaxRetries *int
	// InitialInterval, when set, replaces Retry.InitialInterval.
	InitialInterval *time.Duration
	// MaxInterval, when set, replaces Retry.MaxInterval.
	MaxInterval *time.Duration
	// Multiplier, when set, replaces Retry.Multiplier.
	Multiplier *float64
	// MaxHold, when set, replaces Retry.MaxHold.
	MaxHold *time.Duration
}

// IsZero reports whether o sets no field.
func (o RetryOverride) IsZero() bool {
	return o == RetryOverride{}
}

// Apply returns r with the fields that o sets replaced. The result is not
// checked: call its Check method.
func (o RetryOverride) Apply(r Retry) Retry {
	if o.MaxRetries != nil {
		r.MaxRetries = *o.MaxRetries
	}
	if o.InitialInterval != nil {
		r.InitialInterval = *o.InitialInterval
	}
	if o.MaxInterval != nil {
		r.MaxInterval = *o.MaxInterval
	}
	if o.Multiplier != nil {
		r.Multiplier = *o.Multiplier
	}
	if o.MaxHold != nil {
		r.MaxHold = *o.MaxHold
	}
	return r
}

// WithRetryOverride overrides the fields of a subscription's retry policy
// that o sets. Given to a generated RegisterX or SubscribeX, it applies
// after the event contract's Policy, so a deployment changes, say, only
// MaxRetries and keeps the contract's backoff.
//
// The subscription panics when the resulting policy fails Retry.Check, as a
// programming error: check an override that comes from configuration with
// Apply and Check against every event's policy first (the consumer's config
// does).
func WithRetryOverride(o RetryOverride) SubscribeOption {
	return subscribeOptionFunc(func(c *subConfig) {
		r := o.Apply(c.retry)
		if err := r.Check(); err != nil {
			panic(fmt.Sprintf("eventbus: WithRetryOverride: the overridden retry policy is invalid: %v", err))
		}
		c.retry = r
	})
}
