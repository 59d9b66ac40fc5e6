package eventbus

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes label what happened to one handled message.
const (
	outcomeAck        = "ack"         // handled and acknowledged
	outcomeRetry      = "retry"       // failed, redelivery scheduled
	outcomeDeadLetter = "dead_letter" // terminated, on its way to the DLQ
	outcomeHold       = "hold"        // dependency unavailable, message held
	outcomeWait       = "wait"        // not ready, parked to run again later
	outcomeStale      = "stale"       // failed after its ack wait: dropped, the redelivery decides
	outcomeDropped    = "dropped"     // failed for good, terminated without a dead letter (Policy.DeadLetter false)
)

// metrics are the router's Prometheus metrics. The first three keep the
// names of the original messaging library.
type metrics struct {
	duration    *prometheus.HistogramVec
	handled     *prometheus.CounterVec
	errors      *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	redelivered *prometheus.CounterVec
	lag         *prometheus.GaugeVec
	inFlight    *prometheus.GaugeVec
	held        *prometheus.GaugeVec

	// deadLettersIncomplete counts dead letters stored without the whole
	// original (deadletter_store.go).
	deadLettersIncomplete *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "messaging_handler_duration_seconds",
			Help:    "Time to decode, validate and handle one message, by subject and outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"subject", "outcome"})),
		handled: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messaging_handler_total",
			Help: "Messages handled, by subject and outcome (ack, retry, dead_letter, dropped, hold, wait, stale).",
		}, []string{"subject", "outcome"})),
		errors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messaging_handler_errors_total",
			Help: "Handler failures, by subject and outcome (retry, dead_letter, dropped, hold, stale).",
		}, []string{"subject", "outcome"})),
		deadLetters: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messaging_dead_letters_total",
			Help: "Messages forwarded to a dead-letter subject, by original subject and advisory (max_deliveries, terminated).",
		}, []string{"subject", "advisory"})),
		deadLettersIncomplete: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messaging_dead_letters_incomplete_total",
			Help: "Dead letters stored without the whole original, by original subject and cause (original_lost, truncated, forward_failed).",
		}, []string{"subject", "cause"})),
		redelivered: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messaging_redeliveries_total",
			Help: "Messages received on their second or later delivery, by subject.",
		}, []string{"subject"})),
		lag: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "messaging_consumer_lag",
			Help: "Messages in the stream not yet delivered to the consumer, by subject.",
		}, []string{"subject"})),
		inFlight: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "messaging_in_flight",
			Help: "Messages being handled in this process, by subject.",
		}, []string{"subject"})),
		held: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "messaging_held",
			Help: "Messages held in this process while a dependency is unavailable, by subject.",
		}, []string{"subject"})),
	}
}

// register registers c with reg, or returns the collector already
// registered under its name, so routers can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// subMetrics are one subscription's metric children, resolved once so the
// hot path does no label look-ups.
type subMetrics struct {
	duration    map[string]prometheus.Observer
	handled     map[string]prometheus.Counter
	errors      map[string]prometheus.Counter
	redelivered prometheus.Counter
	inFlight    prometheus.Gauge
	held        prometheus.Gauge
}

func (m *metrics) forSubject(subject string) *subMetrics {
	sm := &subMetrics{
		duration:    map[string]prometheus.Observer{},
		handled:     map[string]prometheus.Counter{},
		errors:      map[string]prometheus.Counter{},
		redelivered: m.redelivered.WithLabelValues(subject),
		inFlight:    m.inFlight.WithLabelValues(subject),
		held:        m.held.WithLabelValues(subject),
	}
	for _, o := range []string{outcomeAck, outcomeRetry, outcomeDeadLetter, outcomeHold, outcomeWait, outcomeStale, outcomeDropped} {
		sm.duration[o] = m.duration.WithLabelValues(subject, o)
		sm.handled[o] = m.handled.WithLabelValues(subject, o)
		if o != outcomeAck && o != outcomeWait {
			sm.errors[o] = m.errors.WithLabelValues(subject, o)
		}
	}
	return sm
}
