package eventbus

import (
	"bytes"
	"sync"

	"google.golang.org/protobuf/proto"
)

// jsonUnmarshaler is implemented by the events, and the messages inside
// them, that protoc-gen-go-events gives a generated JSON codec. The
// generated decoder accepts exactly what protojson accepts with the
// runtime's options (DiscardUnknown) and yields an equal message, without
// reflection; a differential fuzz test holds it to that.
type jsonUnmarshaler interface {
	UnmarshalEventJSON(data []byte) error
}

// jsonAppender is the encoding half of the generated codec: it appends what
// protojson with UseProtoNames writes, without protojson's random spaces.
type jsonAppender interface {
	AppendEventJSON(b []byte) ([]byte, error)
}

// decodeJSON decodes data into msg with its generated codec, or protojson
// for messages the generator left to it. When the generated decoder refuses
// data, protojson decodes it once more, so that the error a dead letter
// carries reads as it always did; and should protojson accept what the
// generated decoder refused, the event is not lost for it.
func decodeJSON(data []byte, msg proto.Message) error {
	if u, ok := msg.(jsonUnmarshaler); ok {
		if u.UnmarshalEventJSON(data) == nil {
			return nil
		}
	}
	return jsonUnmarshal.Unmarshal(data, msg)
}

// encodeBuffers holds scratch buffers for encoding, so that an encoding
// costs one allocation of its exact size.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// putEncodeBuffer returns a scratch buffer to encodeBuffers, unless an
// unusually large event has grown it: the pool should not pin that memory.
func putEncodeBuffer(buf *[]byte) {
	if cap(*buf) <= 64<<10 {
		encodeBuffers.Put(buf)
	}
}

// encodeJSON encodes msg with its generated codec, or protojson for messages
// the generator left to it.
func encodeJSON(msg proto.Message) ([]byte, error) {
	buf := encodeBuffers.Get().(*[]byte)
	defer putEncodeBuffer(buf)
	out, err := appendJSON((*buf)[:0], msg)
	if err != nil {
		return nil, err
	}
	*buf = out
	return bytes.Clone(out), nil
}

// appendJSON appends the JSON encoding of msg to b. A generated encoder's
// error is replaced by protojson's for the same message, as for decoding.
func appendJSON(b []byte, msg proto.Message) ([]byte, error) {
	if a, ok := msg.(jsonAppender); ok {
		if out, err := a.AppendEventJSON(b); err == nil {
			return out, nil
		}
	}
	return jsonMarshal.MarshalAppend(b, msg)
}
