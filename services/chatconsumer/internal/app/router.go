package app

import (
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/chatconsumer/internal/config"
	"github.com/activitychat/chat/services/chatconsumer/internal/handlers"
)

// NewRouter returns the consumer's eventbus router configured from m, with
// every event of activityv1.ActivityEvents registered to h through the
// generated RegisterActivityEvents: each event's contract policy applies,
// overridden by the keys m.Retry sets. reg may be nil for no metrics. Every
// process built from the same Messaging.ServiceName shares the durable
// consumers, and so the work.
func NewRouter(js jetstream.JetStream, m config.Messaging, h *handlers.Handlers, reg prometheus.Registerer, log *slog.Logger) *eventbus.Router {
	r := eventbus.NewRouter(js, RouterOptions(m, reg, log)...)
	var opts []eventbus.SubscribeOption
	if o := m.Retry.Override(); !o.IsZero() {
		opts = append(opts, eventbus.WithRetryOverride(o))
	}
	activityv1.RegisterActivityEvents(r, h, opts...)
	return r
}

// RouterOptions returns the eventbus options that m asks for, but the retry
// override, which NewRouter gives to each subscription after the contract's
// policy. reg and log may be nil for no metrics and the default logger.
func RouterOptions(m config.Messaging, reg prometheus.Registerer, log *slog.Logger) []eventbus.RouterOption {
	opts := []eventbus.RouterOption{
		eventbus.WithService(m.ServiceName),
		eventbus.WithReplicas(m.Replicas),
		eventbus.WithDrainTimeout(m.DrainTimeout),
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
