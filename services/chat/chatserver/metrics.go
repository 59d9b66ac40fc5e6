package chatserver

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the RPC metrics, labelled by procedure, for example
// "/chat.v1.ChatService/AddGroupMember":
//
//   - chat_rpc_requests_total: calls handled
//   - chat_rpc_errors_total: failed calls, also by Connect code, for
//     example code="not_found"
//   - chat_rpc_request_duration_seconds: latency histogram
//   - chat_rpc_unauthenticated_total: requests refused for want of a valid
//     token, before their body was read (not labelled: the path of such a
//     request is the caller's choice)
type metrics struct {
	unauthenticated prometheus.Counter
	requests        *prometheus.CounterVec
	errors          *prometheus.CounterVec
	duration        *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_rpc_requests_total",
			Help: "RPCs handled by the chat service, by procedure.",
		}, []string{"procedure"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_rpc_errors_total",
			Help: "RPCs of the chat service that failed, by procedure and Connect code.",
		}, []string{"procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chat_rpc_request_duration_seconds",
			Help:    "Latency of the chat service's RPCs, by procedure.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"procedure"}),
	}
	m.unauthenticated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chat_rpc_unauthenticated_total",
		Help: "Requests to the chat service refused without a valid bearer token, before their body was read.",
	})
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.duration, m.unauthenticated} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// interceptor records every handled unary call. Calls without a valid
// token never reach it; chat_rpc_unauthenticated_total counts them.
func (m *metrics) interceptor() connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if req.Spec().IsClient {
				return next(ctx, req)
			}
			start := time.Now()
			res, err := next(ctx, req)
			procedure := req.Spec().Procedure
			m.duration.WithLabelValues(procedure).Observe(time.Since(start).Seconds())
			m.requests.WithLabelValues(procedure).Inc()
			if err != nil {
				m.errors.WithLabelValues(procedure, connect.CodeOf(err).String()).Inc()
			}
			return res, err
		}
	})
}
