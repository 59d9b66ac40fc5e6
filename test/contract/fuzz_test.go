package contract

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
)

// fuzzEvents are the Activity events of the generated registry, by the
// index the fuzz input picks.
var fuzzEvents = activityv1.ActivityEvents

// FuzzActivityEvents decodes and validates arbitrary payloads as each of
// the real Activity events, in both content types, as the consumer's
// generated subscriptions do. Seeds: every file of contracts/samples, as
// the event of its folder, in the content type of its name.
//
//	go test -run '^$' -fuzz '^FuzzActivityEvents$' -fuzztime 60s ./test/contract/
func FuzzActivityEvents(f *testing.F) {
	for i, ev := range fuzzEvents {
		err := filepath.WalkDir(filepath.Join(samplesDir, ev.Samples), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f.Add(uint8(i), strings.HasSuffix(path, ".binpb"), data)
			return nil
		})
		if err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, event uint8, binary bool, data []byte) {
		ev := fuzzEvents[int(event)%len(fuzzEvents)]
		ct := eventbus.ContentTypeJSON
		if binary {
			ct = eventbus.ContentTypeProto
		}
		msg := ev.New()
		if err := eventbus.Decode(ct, data, msg); err != nil {
			if !errors.Is(err, eventbus.ErrPermanent) || !errors.Is(err, eventbus.ErrDecode) {
				t.Fatalf("Decode error %v is not a permanent decode error", err)
			}
			return
		}
		if err := eventbus.Validate(msg); err != nil {
			if !errors.Is(err, eventbus.ErrPermanent) || !errors.Is(err, eventbus.ErrInvalid) {
				t.Fatalf("Validate error %v is not a permanent invalid error", err)
			}
			return
		}
		for _, ct := range []string{eventbus.ContentTypeJSON, eventbus.ContentTypeProto} {
			enc, err := eventbus.Encode(ct, msg)
			if err != nil {
				t.Fatalf("Encode(%s) of an accepted %s: %v", ct, ev.Subject, err)
			}
			again := ev.New()
			if err := eventbus.Decode(ct, enc, again); err != nil {
				t.Fatalf("Decode(%s) of its own encoding: %v", ct, err)
			}
			if err := eventbus.Validate(again); err != nil {
				t.Fatalf("invalid after a %s round trip: %v", ct, err)
			}
			j1, _ := eventbus.Encode(eventbus.ContentTypeJSON, msg)
			j2, _ := eventbus.Encode(eventbus.ContentTypeJSON, again)
			if !bytes.Equal(j1, j2) {
				t.Fatalf("%s round trip changed the event:\n%s\n%s", ct, j1, j2)
			}
		}
	})
}
