package chatserver

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonCodec is Connect's JSON codec with one change: responses include
// fields that hold their zero value, so that a curl user sees
// "created": false and "applied": false instead of a missing field.
// Requests are read as Connect reads them, ignoring unknown fields.
type jsonCodec struct {
	name string
}

// jsonCodecs replace Connect's two JSON codecs, "json" and
// "json; charset=utf-8".
var jsonCodecs = []jsonCodec{{"json"}, {"json; charset=utf-8"}}

var (
	jsonMarshal   = protojson.MarshalOptions{EmitUnpopulated: true}
	jsonUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

func (c jsonCodec) Name() string { return c.name }

func (c jsonCodec) Marshal(msg any) ([]byte, error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", msg)
	}
	return jsonMarshal.Marshal(m)
}

func (c jsonCodec) Unmarshal(data []byte, msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto.Message", msg)
	}
	if len(data) == 0 {
		return errors.New("zero-length payload is not a valid JSON object")
	}
	return jsonUnmarshal.Unmarshal(data, m)
}
