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

// jsonBuffers holds encoding buffers, so that an encoding costs one
// allocation of its exact size.
var jsonBuffers = sync.Pool{New: func() any { return new([]byte) }}

// encodeJSON encodes msg with its generated codec, or protojson for messages
// the generator left to it. A generated encoder's error is replaced by
// protojson's for the same message, as for decoding.
func encodeJSON(msg proto.Message) ([]byte, error) {
	a, ok := msg.(jsonAppender)
	if !ok {
		return jsonMarshal.Marshal(msg)
	}
	buf := jsonBuffers.Get().(*[]byte)
	defer jsonBuffers.Put(buf)
	out, err := a.AppendEventJSON((*buf)[:0])
	if err != nil {
		return jsonMarshal.Marshal(msg)
	}
	if cap(out) <= 64<<10 {
		*buf = out
	}
	return bytes.Clone(out), nil
}
