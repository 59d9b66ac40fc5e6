// Package jsonwiretest holds the differential check of the generated JSON
// codecs against protojson, for the fuzz tests of every module that has
// generated events, and the seed inputs that reach protojson's corners.
package jsonwiretest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Codec is a message with a generated JSON codec.
type Codec interface {
	proto.Message
	UnmarshalEventJSON(data []byte) error
	AppendEventJSON(b []byte) ([]byte, error)
}

// The options of the eventbus runtime.
var (
	unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
	marshal   = protojson.MarshalOptions{UseProtoNames: true}
)

// Check decodes data with protojson and with the generated codec of the
// messages newMsg returns, and reports how they differ: one accepts and the
// other rejects, or both accept and the messages are not proto.Equal. For an
// accepted message it also checks the encoders: the generated one must write
// protojson's bytes (up to protojson's random spaces) and what it writes
// must decode to the same message.
func Check(data []byte, newMsg func() Codec) error {
	want, got := newMsg(), newMsg()
	wantErr := unmarshal.Unmarshal(data, want)
	gotErr := got.UnmarshalEventJSON(data)
	switch {
	case wantErr == nil && gotErr != nil:
		return fmt.Errorf("%s: protojson accepts %q, the codec rejects it: %v", name(want), data, gotErr)
	case wantErr != nil && gotErr == nil:
		return fmt.Errorf("%s: protojson rejects %q (%v), the codec accepts it as %v", name(want), data, wantErr, got)
	case wantErr != nil:
		return nil
	case !proto.Equal(got, want):
		return fmt.Errorf("%s: %q decodes to\n\t%v\nwith the codec, to\n\t%v\nwith protojson", name(want), data, got, want)
	}
	return CheckEncode(want, newMsg)
}

// CheckEncode encodes msg with protojson and with its generated codec and
// reports how they differ: one fails and the other does not, or the bytes
// differ other than in protojson's random spaces, or the codec's bytes do
// not decode to msg.
func CheckEncode(msg Codec, newMsg func() Codec) error {
	wantJSON, wantErr := marshal.Marshal(msg)
	gotJSON, gotErr := msg.AppendEventJSON([]byte("prefix"))
	if gotErr == nil {
		if !bytes.HasPrefix(gotJSON, []byte("prefix")) {
			return fmt.Errorf("%s: AppendEventJSON lost what b held: %q", name(msg), gotJSON)
		}
		gotJSON = gotJSON[len("prefix"):]
	}
	switch {
	case wantErr == nil && gotErr != nil:
		return fmt.Errorf("%s: protojson encodes %v, the codec fails: %v", name(msg), msg, gotErr)
	case wantErr != nil && gotErr == nil:
		return fmt.Errorf("%s: protojson fails to encode %v (%v), the codec writes %s", name(msg), msg, wantErr, gotJSON)
	case wantErr != nil:
		return nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, wantJSON); err != nil {
		return fmt.Errorf("%s: protojson wrote %s, which encoding/json does not read: %v", name(msg), wantJSON, err)
	}
	if !bytes.Equal(gotJSON, compact.Bytes()) {
		return fmt.Errorf("%s: %v encodes to\n\t%s\nwith the codec, to\n\t%s\nwith protojson", name(msg), msg, gotJSON, compact.Bytes())
	}
	again := newMsg()
	if err := again.UnmarshalEventJSON(gotJSON); err != nil {
		return fmt.Errorf("%s: the codec does not decode its own %s: %v", name(msg), gotJSON, err)
	}
	if !proto.Equal(again, msg) {
		return fmt.Errorf("%s: %s decodes to %v, not to %v that it encodes", name(msg), gotJSON, again, msg)
	}
	return nil
}

func name(m proto.Message) string { return string(m.ProtoReflect().Descriptor().FullName()) }

// Samples returns the content of every file under dir, recursively: the
// contract samples, valid and invalid, as a seed corpus.
func Samples(dir string) ([][]byte, error) {
	var out [][]byte
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || filepath.Ext(path) == ".md" {
			return err
		}
		b, err := os.ReadFile(path)
		out = append(out, b)
		return err
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no samples under %s", dir)
	}
	return out, err
}
