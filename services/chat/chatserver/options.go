package chatserver

import "github.com/prometheus/client_golang/prometheus"

// An Option changes how New builds a Server.
type Option interface {
	apply(*options)
}

type options struct {
	registry *prometheus.Registry
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithRegistry registers the server's metrics in reg and serves reg on
// /metrics, so that a program embedding the server exposes its own metrics
// and the server's together. Without it the server has a registry of its
// own with the Go runtime and process collectors. A registry holds the
// metrics of one Server: New fails when reg has them already.
func WithRegistry(reg *prometheus.Registry) Option {
	return optionFunc(func(o *options) { o.registry = reg })
}
