package app

import (
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitychat/chat/contracts/eventbus"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/chatconsumer/internal/handlers"
)

// NewRouter returns the consumer's eventbus router configured from m, with
// the three handlers of h registered. reg may be nil for no metrics. Every
// process built from the same Messaging.ServiceName shares the durable
// consumers, and so the work.
func NewRouter(js jetstream.JetStream, m config.Messaging, h *handlers.Handlers, reg prometheus.Registerer, log *slog.Logger) *eventbus.Router {
	r := eventbus.NewRouter(js, RouterOptions(m, reg, log)...)
	h.Register(r)
	return r
}

// RouterOptions returns the eventbus options that m asks for. reg and log
// may be nil for no metrics and the default logger.
func RouterOptions(m config.Messaging, reg prometheus.Registerer, log *slog.Logger) []eventbus.RouterOption {
	opts := []eventbus.RouterOption{
		eventbus.WithService(DurableName(m.ServiceName)),
		eventbus.WithReplicas(m.Replicas),
		eventbus.WithDrainTimeout(m.DrainTimeout),
		eventbus.WithRetry(eventbus.Retry{
			MaxRetries:      m.Retry.MaxRetries,
			InitialInterval: m.Retry.InitialInterval,
			MaxInterval:     m.Retry.MaxInterval,
			Multiplier:      m.Retry.Multiplier,
			MaxHold:         m.Retry.MaxHold,
		}),
		eventbus.WithConcurrency(m.Concurrency),
		eventbus.WithAckWait(m.AckWait),
		eventbus.WithMaxAckPending(m.MaxAckPending),
	}
	if log != nil {
		opts = append(opts, eventbus.WithLogger(log))
	}
	if reg != nil {
		opts = append(opts, eventbus.WithMetrics(reg))
	}
	return opts
}

// DurableName turns a service name such as the seed's "chat.consumer" into
// a valid prefix of JetStream consumer names, which may not hold '.', '*',
// '>' or whitespace.
func DurableName(service string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '/', '\\':
			return '_'
		}
		return r
	}, service)
}
