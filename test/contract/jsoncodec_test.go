package contract

import (
	"testing"

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
