package eventbus_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/activitychat/chat/contracts/eventbus"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// The fuzz targets feed arbitrary payloads to Decode and Validate, as a
// subscription does with whatever is published to its subject. Run one with
//
//	go test -run '^$' -fuzz '^FuzzDecodeJSON$' -fuzztime 60s ./contracts/eventbus/
//
// or all of them briefly with `make fuzz`. Their seed corpus is every file
// of contracts/samples (valid and invalid) plus the test event Ping in both
// encodings; crashers found are kept in testdata/fuzz and run by go test.

// addSamples adds every file under contracts/samples whose name has one of
// the suffixes as a seed.
func addSamples(f *testing.F, suffixes ...string) {
	f.Helper()
	err := filepath.WalkDir(filepath.Join("..", "samples"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".md") {
			return err
		}
		for _, s := range suffixes {
			if strings.HasSuffix(path, s) {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				f.Add(data)
				return nil
			}
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	addSamples(f, ".json", ".txt")
	data, err := eventbus.Encode(eventbus.ContentTypeJSON, ping("act_123456"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, eventbus.ContentTypeJSON, data) })
}

func FuzzDecodeBinary(f *testing.F) {
	addSamples(f, ".binpb")
	data, err := eventbus.Encode(eventbus.ContentTypeProto, ping("act_123456"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, eventbus.ContentTypeProto, data) })
}

// checkDecode decodes data as contentType and validates it. Errors must be
// permanent; an accepted event must survive encoding and decoding in both
// content types and still be valid.
func checkDecode(t *testing.T, contentType string, data []byte) {
	var msg testpbv1.Ping
	if err := eventbus.Decode(contentType, data, &msg); err != nil {
		if !errors.Is(err, eventbus.ErrPermanent) {
			t.Fatalf("Decode error %v is not permanent", err)
		}
		return
	}
	if err := eventbus.Validate(&msg); err != nil {
		if !errors.Is(err, eventbus.ErrPermanent) {
			t.Fatalf("Validate error %v is not permanent", err)
		}
		return
	}
	for _, ct := range []string{eventbus.ContentTypeJSON, eventbus.ContentTypeProto} {
		enc, err := eventbus.Encode(ct, &msg)
		if err != nil {
			t.Fatalf("Encode(%s) of an accepted event: %v", ct, err)
		}
		var again testpbv1.Ping
		if err := eventbus.Decode(ct, enc, &again); err != nil {
			t.Fatalf("Decode(%s) of its own encoding %q: %v", ct, enc, err)
		}
		if err := eventbus.Validate(&again); err != nil {
			t.Fatalf("after a %s round trip the event is invalid: %v", ct, err)
		}
		// JSON drops unknown fields, so compare the JSON of both.
		j1, _ := eventbus.Encode(eventbus.ContentTypeJSON, &msg)
		j2, _ := eventbus.Encode(eventbus.ContentTypeJSON, &again)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("%s round trip changed the event:\n%s\n%s", ct, j1, j2)
		}
		if ct == eventbus.ContentTypeProto && !proto.Equal(&msg, &again) {
			t.Fatalf("binary round trip changed the event: %v vs %v", &msg, &again)
		}
	}
}
