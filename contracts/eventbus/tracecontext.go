package eventbus

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
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

// traceparentLen is the length of a version 00 traceparent.
const traceparentLen = len("00-") + 32 + len("-") + 16 + len("-01")

// appendChildTraceparent appends a traceparent for a new span: in the trace
// of parent when parent is a valid traceparent, in a new trace otherwise.
func appendChildTraceparent(b []byte, parent string) []byte {
	// Trace and span ids need to be unique, not secret: the runtime's
	// per-thread generator is enough, and far cheaper than crypto/rand.
	var r [24]byte
	binary.LittleEndian.PutUint64(r[0:], rand.Uint64())
	binary.LittleEndian.PutUint64(r[8:], rand.Uint64())
	binary.LittleEndian.PutUint64(r[16:], rand.Uint64())
	b = append(b, "00-"...)
	if traceID, ok := parentTraceID(parent); ok {
		b = append(b, traceID...)
	} else {
		b = hex.AppendEncode(b, r[:16])
	}
	b = append(b, '-')
	b = hex.AppendEncode(b, r[16:])
	return append(b, "-01"...)
}

// parentTraceID returns the trace id of parent: its second of four
// dash-separated fields, when that has 32 characters and is not all zeros.
func parentTraceID(parent string) (string, bool) {
	if strings.Count(parent, "-") != 3 {
		return "", false
	}
	_, rest, _ := strings.Cut(parent, "-")
	traceID, _, _ := strings.Cut(rest, "-")
	return traceID, len(traceID) == 32 && traceID != "00000000000000000000000000000000"
}
