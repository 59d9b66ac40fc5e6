package eventbus

import "time"

// StreamLimits bounds a stream that the router creates. The router sets
// them only when it creates a stream; it never changes an existing one
// (Provision logs a warning when an existing stream's limits could remove
// a message before it is dead-lettered). Streams the router creates discard
// new messages when full, so a full stream rejects publishes instead of
// silently removing messages that were not handled yet.
type StreamLimits struct {
	// MaxAge is how long a message is kept; 0 keeps it until a size limit
	// or an operator removes it. A message older than MaxAge is removed
	// whether it was handled or not.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size; 0 means no bound. When the stream
	// is full, publishing to it fails until MaxAge removes old messages or
	// an operator makes room.
	MaxBytes int64
}

// Default limits of the streams the router creates.
var (
	// DefaultEventStreamLimits bound an event stream: 7 days, 1 GiB.
	DefaultEventStreamLimits = StreamLimits{MaxAge: 7 * 24 * time.Hour, MaxBytes: 1 << 30}
	// DefaultAdvisoryStreamLimits bound an advisory stream, which holds
	// only advisories not forwarded yet: 7 days, 256 MiB.
	DefaultAdvisoryStreamLimits = StreamLimits{MaxAge: 7 * 24 * time.Hour, MaxBytes: 256 << 20}
	// DefaultDeadLetterStreamLimits bound a DLQ stream: no age limit (dead
	// letters stay until replayed, deleted or purged; see
	// WithDeadLetterMaxAge), 1 GiB.
	DefaultDeadLetterStreamLimits = StreamLimits{MaxBytes: 1 << 30}
)

// streamLimits are the limits of the three kinds of stream the router
// creates.
type streamLimits struct {
	events, advisories, deadLetters StreamLimits
}

func defaultStreamLimits() streamLimits {
	return streamLimits{
		events:      DefaultEventStreamLimits,
		advisories:  DefaultAdvisoryStreamLimits,
		deadLetters: DefaultDeadLetterStreamLimits,
	}
}

// WithStreamLimits sets the limits of the event streams the router creates.
// The default is DefaultEventStreamLimits.
func WithStreamLimits(l StreamLimits) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.limits.events = l })
}

// WithAdvisoryStreamLimits sets the limits of the advisory streams
// (<STREAM>_ADVISORIES) the router creates. An advisory older than MaxAge
// that the forwarder has not forwarded, because no replica of the service
// ran for that long, is lost. The default is DefaultAdvisoryStreamLimits.
func WithAdvisoryStreamLimits(l StreamLimits) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.limits.advisories = l })
}

// WithDeadLetterStreamLimits sets the limits of the DLQ streams
// (<STREAM>_DLQ) the router creates; WithDeadLetterMaxAge, when given,
// overrides MaxAge. When a DLQ stream is full, storing a dead letter fails
// and is retried; nothing is removed. The default is
// DefaultDeadLetterStreamLimits.
func WithDeadLetterStreamLimits(l StreamLimits) RouterOption {
	return routerOptionFunc(func(c *routerConfig) { c.limits.deadLetters = l })
}
