package eventbus_test

import (
	"testing"

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
