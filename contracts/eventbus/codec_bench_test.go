package eventbus_test

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// BenchmarkDecode measures decoding and validating one event by content type.
func BenchmarkDecode(b *testing.B) {
	for _, ct := range []string{eventbus.ContentTypeJSON, eventbus.ContentTypeProto} {
		data, err := eventbus.Encode(ct, ping("bench-1"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(ct, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var p testpbv1.Ping
				if err := eventbus.Decode(ct, data, &p); err != nil {
					b.Fatal(err)
				}
				if err := eventbus.Validate(&p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJSONCodec compares, on one Ping, the generated JSON codec that
// Decode and Encode use with protojson under the runtime's options:
// decoding plus Validate, and encoding.
func BenchmarkJSONCodec(b *testing.B) {
	p := ping("bench-1")
	data, err := eventbus.Encode(eventbus.ContentTypeJSON, p)
	if err != nil {
		b.Fatal(err)
	}
	unmarshal := protojson.UnmarshalOptions{DiscardUnknown: true}
	marshal := protojson.MarshalOptions{UseProtoNames: true}
	decoders := []struct {
		name   string
		decode func([]byte, proto.Message) error
	}{
		{"protojson", unmarshal.Unmarshal},
		{"generated", func(d []byte, m proto.Message) error { return eventbus.Decode(eventbus.ContentTypeJSON, d, m) }},
	}
	for _, dec := range decoders {
		b.Run("decode/"+dec.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var p testpbv1.Ping
				if err := dec.decode(data, &p); err != nil {
					b.Fatal(err)
				}
				if err := eventbus.Validate(&p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	encoders := []struct {
		name   string
		encode func(proto.Message) ([]byte, error)
	}{
		{"protojson", marshal.Marshal},
		{"generated", func(m proto.Message) ([]byte, error) { return eventbus.Encode(eventbus.ContentTypeJSON, m) }},
	}
	for _, enc := range encoders {
		b.Run("encode/"+enc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc.encode(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
