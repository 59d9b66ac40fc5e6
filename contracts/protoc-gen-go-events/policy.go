package main

import (
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/activitychat/chat/contracts/eventbus"
	optionsv1 "github.com/activitychat/chat/contracts/eventoptions/v1"
)

// Field numbers of eventchat.options.v1.DeliveryPolicy, for error locations.
const (
	maxRetriesNumber        = 1
	initialBackoffNumber    = 2
	maxBackoffNumber        = 3
	backoffMultiplierNumber = 4
	maxHoldNumber           = 5
	orderingKeyNumber       = 7
)

// maxRetriesLimit is the most retries a policy may ask for, as
// eventbus.Retry.Check allows.
const maxRetriesLimit = 1000

// policyOf resolves the policy the event option of msg declares, or returns
// nil when it declares none. Fields left out take eventbus.DefaultRetry's
// values. An invalid value is an error that names the file, the message and
// the option field.
func policyOf(file *protogen.File, msg *protogen.Message, p *optionsv1.DeliveryPolicy) (*eventbus.Policy, error) {
	if p == nil {
		return nil, nil
	}
	fail := func(n int32, field string, value any, format string, args ...any) error {
		return errorAt(file, eventOptionPath(file, msg, eventPolicyNumber, n), "%s: (eventchat.options.v1.event).policy.%s %s: %s",
			msg.Desc.FullName(), field, value, fmt.Sprintf(format, args...))
	}
	duration := func(n int32, field, s string, def time.Duration) (time.Duration, error) {
		if s == "" {
			return def, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fail(n, field, fmt.Sprintf("%q", s), "is not a Go duration such as \"250ms\", \"10s\" or \"2m\"")
		}
		return d, nil
	}
	r := eventbus.DefaultRetry
	if p.MaxRetries != nil {
		if n := p.GetMaxRetries(); n > maxRetriesLimit {
			return nil, fail(maxRetriesNumber, "max_retries", fmt.Sprint(n), "must be at most %d", maxRetriesLimit)
		}
		r.MaxRetries = int(p.GetMaxRetries())
	}
	var err error
	if r.InitialInterval, err = duration(initialBackoffNumber, "initial_backoff", p.GetInitialBackoff(), r.InitialInterval); err != nil {
		return nil, err
	}
	if r.InitialInterval <= 0 {
		return nil, fail(initialBackoffNumber, "initial_backoff", fmt.Sprintf("%q", p.GetInitialBackoff()), "must be positive")
	}
	if r.MaxInterval, err = duration(maxBackoffNumber, "max_backoff", p.GetMaxBackoff(), r.MaxInterval); err != nil {
		return nil, err
	}
	if r.MaxInterval < r.InitialInterval {
		if p.GetMaxBackoff() == "" {
			return nil, fail(initialBackoffNumber, "initial_backoff", fmt.Sprintf("%q", p.GetInitialBackoff()),
				"must not exceed max_backoff, which defaults to %s; set max_backoff too", r.MaxInterval)
		}
		return nil, fail(maxBackoffNumber, "max_backoff", fmt.Sprintf("%q", p.GetMaxBackoff()),
			"must not be less than initial_backoff (%s)", r.InitialInterval)
	}
	if p.BackoffMultiplier != nil {
		m := p.GetBackoffMultiplier()
		if m < 1 || math.IsInf(m, 0) || math.IsNaN(m) {
			return nil, fail(backoffMultiplierNumber, "backoff_multiplier", fmt.Sprint(m), "must be at least 1 and finite")
		}
		r.Multiplier = m
	}
	if r.MaxHold, err = duration(maxHoldNumber, "max_hold", p.GetMaxHold(), r.MaxHold); err != nil {
		return nil, err
	}
	if r.MaxHold < 0 {
		return nil, fail(maxHoldNumber, "max_hold", fmt.Sprintf("%q", p.GetMaxHold()), "must not be negative")
	}
	// A safety net: the checks above are Check's, with better messages.
	if err := r.Check(); err != nil {
		return nil, errorAt(file, eventOptionPath(file, msg, eventPolicyNumber), "%s: (eventchat.options.v1.event).policy: %v", msg.Desc.FullName(), err)
	}
	if key := p.GetOrderingKey(); key != "" {
		if err := checkOrderingKey(msg, key); err != nil {
			return nil, fail(orderingKeyNumber, "ordering_key", fmt.Sprintf("%q", key), "%v", err)
		}
	}
	return &eventbus.Policy{
		Retry:       r,
		DeadLetter:  p.DeadLetter == nil || p.GetDeadLetter(),
		OrderingKey: p.GetOrderingKey(),
	}, nil
}

// checkOrderingKey checks that key names a singular string or integer field
// of msg.
func checkOrderingKey(msg *protogen.Message, key string) error {
	f := msg.Desc.Fields().ByName(protoreflect.Name(key))
	if f == nil {
		return fmt.Errorf("names no field of %s", msg.Desc.FullName())
	}
	if f.IsList() || f.IsMap() {
		return fmt.Errorf("must name a singular field, not a repeated or map field")
	}
	switch f.Kind() {
	case protoreflect.StringKind,
		protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return nil
	}
	return fmt.Errorf("must name a string or integer field, not a %s field", f.Kind())
}
