package contract

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/activitychat/chat/contracts/eventbus"

	"github.com/activitychat/chat/contracts/eventbus/jsonwire/jsonwiretest"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
)

// FuzzJSONCodecEvents checks the generated JSON codecs of the activity
// events against protojson, with the runtime's options: the same payloads
// accepted, the same events decoded, the same JSON encoded. Every input is
// tried as each event. The seeds are the contract samples, valid and
// invalid, and inputs written to reach protojson's corners. Run it with make
// fuzz, or go test -run '^$' -fuzz FuzzJSONCodecEvents ./contract/ in test/.
func FuzzJSONCodecEvents(f *testing.F) {
	samples, err := jsonwiretest.Samples(samplesDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range samples {
		f.Add(s)
	}
	for _, s := range jsonwiretest.Seeds("activity_id", "created_at", "") {
		f.Add(s)
	}
	for _, s := range jsonwiretest.Seeds("userId", "joinedAt", "") {
		f.Add(s)
	}
	for _, s := range jsonwiretest.Seeds("creatorId", "left_at", "") {
		f.Add(s)
	}
	events := []func() jsonwiretest.Codec{
		func() jsonwiretest.Codec { return new(activityv1.ActivityCreated) },
		func() jsonwiretest.Codec { return new(activityv1.ActivityMemberJoined) },
		func() jsonwiretest.Codec { return new(activityv1.ActivityMemberLeft) },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, newMsg := range events {
			if err := jsonwiretest.Check(data, newMsg); err != nil {
				t.Error(err)
			}
		}
	})
}

// BenchmarkJSONCodecEvents compares, on each seed sample, decoding plus
// Validate with the generated codec (as eventbus.Decode does) and with
// protojson under the runtime's options.
func BenchmarkJSONCodecEvents(b *testing.B) {
	unmarshal := protojson.UnmarshalOptions{DiscardUnknown: true}
	for _, c := range activityv1.ActivityEvents {
		data, err := os.ReadFile(filepath.Join(samplesDir, c.Samples, "seed.json"))
		if err != nil {
			b.Fatal(err)
		}
		for _, dec := range []struct {
			name   string
			decode func([]byte, proto.Message) error
		}{
			{"protojson", unmarshal.Unmarshal},
			{"generated", func(d []byte, m proto.Message) error { return eventbus.Decode(eventbus.ContentTypeJSON, d, m) }},
		} {
			b.Run(c.Subject+"/"+dec.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					msg := c.New()
					if err := dec.decode(data, msg); err != nil {
						b.Fatal(err)
					}
					if err := eventbus.Validate(msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
