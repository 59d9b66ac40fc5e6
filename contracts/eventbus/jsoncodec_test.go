package eventbus_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	"github.com/activitychat/chat/contracts/eventbus/jsonwire/jsonwiretest"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// codecMessages are the test messages with a generated JSON codec.
var codecMessages = []func() jsonwiretest.Codec{
	func() jsonwiretest.Codec { return new(testpbv1.Ping) },
	func() jsonwiretest.Codec { return new(testpbv1.Pong) },
	func() jsonwiretest.Codec { return new(testpbv1.Kinds) },
	func() jsonwiretest.Codec { return new(testpbv1.Kinds_Inner) },
}

// kindsSeeds reach the fields of Kinds that the generic seeds do not.
var kindsSeeds = []string{
	`{"text":"a","flag":true,"i32":-5,"s32":"6","sf32":7,"i64":"-8","s64":9,"sf64":"10","u32":11,"f32":"12",` +
		`"u64":"18446744073709551615","f64":14,"color":"COLOR_GREEN","at":"2024-01-01T10:00:00.5+01:00",` +
		`"inner":{"name":"n","color":1,"next":{"next":{}},"at":null},"renamed":"r","self":{"self":{"text":"deep"}}}`,
	`{"customJson":"x"}`, `{"custom_json":"x"}`, `{"renamed":"x","custom_json":"y"}`, `{"flag":false}`,
	`{"flag":"true"}`, `{"flag":1}`, `{"flag":null}`, `{"flag":True}`, `{"color":"COLOR_RED"}`, `{"color":"nope"}`,
	`{"color":7}`, `{"color":-1}`, `{"color":2147483648}`, `{"color":"1"}`, `{"color":1.0}`, `{"color":true}`,
	`{"color":null}`, `{"inner":null}`, `{"inner":{}}`, `{"inner":[]}`, `{"inner":"x"}`, `{"inner":{"nope":[{}]}}`,
	`{"inner":{"name":"a","name":"b"}}`, `{"inner":{"name":1}}`, `{"self":{"self":{"self":null}}}`,
	`{"i32":2147483647}`, `{"i32":2147483648}`, `{"u32":-0}`, `{"u32":"-0"}`, `{"u64":-1}`, `{"i64":1e18}`,
	`{"i64":"1e18"}`, `{"sf64":-9223372036854775808}`, `{"s64":"-9223372036854775809"}`, `{"f64":1.8446744073709551615e19}`,
	`{"sentAt":"2024-01-01T10:00:00Z","sent_at":"2024-01-01T10:00:00Z"}`, `{"id":"x","detail":{"kind":"k"},"count":3}`,
	`{"id":"x","note":"n","sentAt":"2024-01-01T10:00:00Z","count":"100","detail":{"kind":"k","extra":{"a":[1,2]}},"unchecked":"u"}`,
	`{"at":"2024-01-01T10:00:00.123Z","inner":{"at":"1970-01-01T00:00:00Z"}}`,
}

// FuzzJSONCodec checks the generated JSON codecs of the test messages
// against protojson: the same inputs accepted, the same messages decoded,
// the same JSON encoded. Its seeds are the contract samples, valid and
// invalid, and inputs written to reach protojson's corners. Run it with
// make fuzz, or go test -run '^$' -fuzz FuzzJSONCodec ./eventbus/.
func FuzzJSONCodec(f *testing.F) {
	samples, err := jsonwiretest.Samples("../samples")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range samples {
		f.Add(s)
	}
	for _, s := range jsonwiretest.Seeds("id", "sent_at", "count") {
		f.Add(s)
	}
	for _, s := range jsonwiretest.Seeds("text", "at", "i64") {
		f.Add(s)
	}
	for _, s := range jsonwiretest.Seeds("renamed", "sentAt", "u32") {
		f.Add(s)
	}
	for _, s := range kindsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, newMsg := range codecMessages {
			if err := jsonwiretest.Check(data, newMsg); err != nil {
				t.Error(err)
			}
		}
	})
}

// TestJSONCodecEncode checks the generated encoders against protojson for
// values no decoded message holds: strings that are not UTF-8, timestamps
// out of range, enum numbers without a name, and every kind at its limits.
func TestJSONCodecEncode(t *testing.T) {
	at := timestamppb.New(time.Date(2024, 1, 1, 10, 0, 0, 120000000, time.UTC))
	for _, msg := range []jsonwiretest.Codec{
		&testpbv1.Kinds{},
		&testpbv1.Kinds{Text: "\x00\x1f\x7f\"\\/<>&\u2028\ufffd\b\f\n\r\t é😀", Flag: true, I32: -2147483648, S32: 2147483647,
			Sf32: -1, I64: -9223372036854775808, S64: 9223372036854775807, Sf64: -1, U32: 4294967295, F32: 1,
			U64: 18446744073709551615, F64: 1, Color: testpbv1.Color_COLOR_GREEN, At: at, CustomJson: "c",
			Inner: &testpbv1.Kinds_Inner{Next: &testpbv1.Kinds_Inner{}, Color: 9}, Self: &testpbv1.Kinds{Color: -3}},
		&testpbv1.Kinds{Text: "bad \xff"},
		&testpbv1.Kinds{Inner: &testpbv1.Kinds_Inner{Name: "\xed\xa0\x80"}},
		&testpbv1.Kinds{At: &timestamppb.Timestamp{Seconds: -62135596800}},
		&testpbv1.Kinds{At: &timestamppb.Timestamp{Seconds: -62135596801}},
		&testpbv1.Kinds{At: &timestamppb.Timestamp{Seconds: 253402300799, Nanos: 999999999}},
		&testpbv1.Kinds{At: &timestamppb.Timestamp{Seconds: 253402300800}},
		&testpbv1.Kinds{At: &timestamppb.Timestamp{Nanos: -1}},
		&testpbv1.Kinds{At: &timestamppb.Timestamp{Nanos: 1000000000}},
		&testpbv1.Kinds{At: &timestamppb.Timestamp{Nanos: 1}},
		&testpbv1.Kinds{At: &timestamppb.Timestamp{Nanos: 1000}},
		&testpbv1.Kinds{At: &timestamppb.Timestamp{Seconds: -1, Nanos: 1000000}},
		&testpbv1.Kinds{Inner: &testpbv1.Kinds_Inner{At: &timestamppb.Timestamp{Seconds: 1e12}}},
		ping("p-1"),
		&testpbv1.Ping{Detail: &testpbv1.Ping_Detail{}},
		&testpbv1.Pong{Id: "x"},
	} {
		newMsg := func() jsonwiretest.Codec { return msg.ProtoReflect().New().Interface().(jsonwiretest.Codec) }
		if err := jsonwiretest.CheckEncode(msg, newMsg); err != nil {
			t.Error(err)
		}
	}
	var nilKinds *testpbv1.Kinds
	if got, err := nilKinds.AppendEventJSON(nil); err != nil || string(got) != "{}" {
		t.Errorf("nil Kinds encodes to %q, %v; want {}", got, err)
	}
}

// TestJSONCodecDepth checks the recursion limit at its edge, where the
// fuzzer does not go: messages and unknown values nested 10,000 deep.
func TestJSONCodecDepth(t *testing.T) {
	nested := func(n int, inner string) []byte {
		return []byte(strings.Repeat(`{"self":`, n) + inner + strings.Repeat("}", n))
	}
	for _, n := range []int{9997, 9998, 9999, 10000} {
		for _, inner := range []string{`{}`, `{"at":"2024-01-01T10:00:00Z"}`, `{"x":[]}`, `{"x":[[]]}`, `null`} {
			if err := jsonwiretest.Check(nested(n, inner), codecMessages[2]); err != nil {
				t.Errorf("depth %d, %s: %v", n, inner, err)
			}
		}
	}
	for _, n := range []int{9998, 9999, 10000, 10001} {
		doc := []byte(`{"x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`)
		if err := jsonwiretest.Check(doc, codecMessages[2]); err != nil {
			t.Errorf("unknown value %d deep: %v", n, err)
		}
	}
}

// TestDecodeUsesCodec checks how Decode and Encode pick the codec: generated
// for events that have one, protojson for those that do not, and that a
// rejected payload reads as protojson's error.
func TestDecodeUsesCodec(t *testing.T) {
	if _, ok := any(new(testpbv1.Fallback)).(interface{ UnmarshalEventJSON([]byte) error }); ok {
		t.Fatal("Fallback, which has a repeated field, has a generated JSON codec")
	}
	var fb testpbv1.Fallback
	if err := eventbus.Decode(eventbus.ContentTypeJSON, []byte(`{"tags":["a","b"]}`), &fb); err != nil {
		t.Fatal(err)
	}
	if got, err := eventbus.Encode(eventbus.ContentTypeJSON, &fb); err != nil || strings.ReplaceAll(string(got), " ", "") != `{"tags":["a","b"]}` {
		t.Errorf("Encode(Fallback) = %s, %v", got, err)
	}

	bad := []byte(`{"id":"x","sent_at":"2024-13-01T10:00:00Z"}`)
	err := eventbus.Decode(eventbus.ContentTypeJSON, bad, new(testpbv1.Ping))
	if !errors.Is(err, eventbus.ErrDecode) {
		t.Fatalf("Decode(%s) = %v, want ErrDecode", bad, err)
	}
	want := protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(bad, new(testpbv1.Ping))
	if !strings.HasSuffix(err.Error(), want.Error()) {
		t.Errorf("Decode error %q, want it to end in protojson's %q", err, want)
	}

	p := ping("p-1")
	data, err := eventbus.Encode(eventbus.ContentTypeJSON, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"p-1","sent_at":"2024-01-01T10:00:00Z","detail":{"kind":"test"}}`; string(data) != want {
		t.Errorf("Encode = %s, want %s", data, want)
	}
	var back testpbv1.Ping
	if err := eventbus.Decode("", data, &back); err != nil || !proto.Equal(&back, p) {
		t.Errorf("Decode(Encode(p)) = %v, %v; want %v", &back, err, p)
	}
}
