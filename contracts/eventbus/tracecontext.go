package eventbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Header names the runtime sets and reads.
const (
	// HeaderContentType names the payload's encoding.
	HeaderContentType = "Content-Type"
	// HeaderEventType holds the event's full protobuf name.
	HeaderEventType = "Event-Type"
	// HeaderTraceparent is the W3C trace-context header.
	HeaderTraceparent = "traceparent"
)

type traceKey struct{}

// ContextWithTraceparent returns a context that carries a W3C traceparent.
// Publish propagates it; the router puts each message's traceparent into the
// context it passes to the handler.
func ContextWithTraceparent(ctx context.Context, traceparent string) context.Context {
	return context.WithValue(ctx, traceKey{}, traceparent)
}

// TraceparentFromContext returns the traceparent ctx carries, or "".
func TraceparentFromContext(ctx context.Context) string {
	s, _ := ctx.Value(traceKey{}).(string)
	return s
}

// childTraceparent returns a traceparent for a new span: in the trace of
// parent when parent is a valid traceparent, in a new trace otherwise.
func childTraceparent(parent string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	traceID := hex.EncodeToString(b[:16])
	if p := strings.Split(parent, "-"); len(p) == 4 && len(p[1]) == 32 && p[1] != strings.Repeat("0", 32) {
		traceID = p[1]
	}
	return "00-" + traceID + "-" + hex.EncodeToString(b[16:]) + "-01"
}
