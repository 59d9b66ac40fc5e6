package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	optionsv1 "github.com/activitychat/chat/contracts/eventoptions/v1"
	"github.com/activitychat/chat/contracts/rules"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
)

var update = flag.Bool("update", false, "rewrite the .binpb samples under contracts/samples: "+
	"those of valid samples from their JSON twins, the invalid ones from this test's table")

// samplesDir is contracts/samples, relative to this package.
const samplesDir = "../../contracts/samples"

// invalidDir is the folder of a subject's samples that must be rejected.
const invalidDir = "invalid"

// seeds is what each event's seed.json, the seed's JSON example, decodes
// to, by subject. The events under test come from the generated registry
// activityv1.ActivityEvents; an event without an entry here is checked
// like any other (decode, validate, round trips), only not against values
// written out in Go.
var seeds = map[string]proto.Message{
	activityv1.ActivityCreatedSubject: &activityv1.ActivityCreated{
		ActivityId: "act_123456",
		CreatorId:  "user_789",
		Title:      "周末爬山活动",
		CreatedAt:  timestamppb.New(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)),
	},
	activityv1.ActivityMemberJoinedSubject: &activityv1.ActivityMemberJoined{
		ActivityId: "act_123456",
		UserId:     "user_456",
		JoinedAt:   timestamppb.New(time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC)),
	},
	activityv1.ActivityMemberLeftSubject: &activityv1.ActivityMemberLeft{
		ActivityId: "act_123456",
		UserId:     "user_456",
		LeftAt:     timestamppb.New(time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)),
	},
}

// contractFor returns the registered event whose samples folder is dir.
func contractFor(t *testing.T, dir string) eventbus.EventInfo {
	t.Helper()
	for _, ev := range activityv1.ActivityEvents {
		if ev.Samples == dir {
			return ev
		}
	}
	t.Fatalf("no event of activityv1.ActivityEvents has the samples folder %q", dir)
	return eventbus.EventInfo{}
}

// deterministic is how the .binpb samples are encoded.
var deterministic = proto.MarshalOptions{Deterministic: true}

// TestEveryEventHasSamples checks that the events the proto declares, the Go
// code generated from it and the sample folders agree: one folder per subject,
// named by the subject, with the seed's example and only JSON samples and
// their binary twins.
func TestEveryEventHasSamples(t *testing.T) {
	msgs := activityv1.File_activity_v1_events_proto.Messages()
	declared := map[string]bool{}
	for i := range msgs.Len() {
		md := msgs.Get(i)
		opts, ok := proto.GetExtension(md.Options(), optionsv1.E_Event).(*optionsv1.EventOptions)
		if !ok || opts == nil {
			continue
		}
		declared[opts.GetSubject()] = true
		ev, ok := activityv1.ActivityEvents.Lookup(opts.GetSubject())
		if !ok {
			t.Errorf("%s declares subject %q, which activityv1.ActivityEvents lacks", md.FullName(), opts.GetSubject())
			continue
		}
		if got := ev.Name(); got != md.FullName() {
			t.Errorf("the registered event of subject %q decodes into %s, want %s", ev.Subject, got, md.FullName())
		}
		if ev.Stream != opts.GetStream() {
			t.Errorf("registered stream %q, the proto option says %q", ev.Stream, opts.GetStream())
		}
	}
	if len(declared) == 0 {
		t.Fatal("activity/v1/events.proto declares no events")
	}
	folders := map[string]bool{}
	for _, ev := range activityv1.ActivityEvents {
		if !declared[ev.Subject] {
			t.Errorf("activityv1.ActivityEvents registers subject %q, which no message of activity/v1/events.proto declares", ev.Subject)
		}
		folders[ev.Samples] = true
		t.Run(ev.Subject, func(t *testing.T) {
			dir := filepath.Join(samplesDir, ev.Samples)
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatalf("event %s has no samples: %v", ev.Name(), err)
			}
			names := make(map[string]bool)
			for _, e := range entries {
				names[e.Name()] = true
			}
			if !names["seed.json"] {
				t.Errorf("%s has no seed.json, the example of the event", dir)
			}
			for name := range names {
				switch ext := filepath.Ext(name); {
				case name == invalidDir || name == "seed.json":
				case ext == ".json":
				case ext == ".binpb" && names[strings.TrimSuffix(name, ext)+".json"]:
				default:
					t.Errorf("%s/%s: a valid sample is a .json file with an optional .binpb twin", dir, name)
				}
			}
		})
	}
	entries, err := os.ReadDir(samplesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !folders[e.Name()] {
			t.Errorf("%s/%s is the samples folder of no event in activityv1.ActivityEvents", samplesDir, e.Name())
		}
	}
}

// validSamples returns the valid JSON samples, as "<subject>/<name>.json".
func validSamples(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(samplesDir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		paths[i] = filepath.ToSlash(strings.TrimPrefix(p, samplesDir+string(filepath.Separator)))
	}
	if len(paths) == 0 {
		t.Fatalf("no samples in %s", samplesDir)
	}
	return paths
}

// TestValidSamples decodes every valid sample into its event's Go type as the
// subscriber does, validates it and checks that it survives the codecs.
func TestValidSamples(t *testing.T) {
	for _, path := range validSamples(t) {
		t.Run(path, func(t *testing.T) {
			c := contractFor(t, filepath.Dir(path))
			data := readSample(t, path)

			msg := c.New()
			if err := eventbus.Decode(eventbus.ContentTypeJSON, data, msg); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := eventbus.Validate(msg); err != nil {
				t.Fatalf("validate: %v", err)
			}

			// JSON -> proto -> JSON -> proto.
			out, err := eventbus.Encode(eventbus.ContentTypeJSON, msg)
			if err != nil {
				t.Fatalf("encode JSON: %v", err)
			}
			again := c.New()
			if err := eventbus.Decode(eventbus.ContentTypeJSON, out, again); err != nil {
				t.Fatalf("decode re-encoded JSON %s: %v", out, err)
			}
			assertEqual(t, "JSON round trip", again, msg)

			// The binary twin is the deterministic encoding of the same event.
			bin, err := deterministic.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			binPath := strings.TrimSuffix(path, ".json") + ".binpb"
			if *update {
				writeSample(t, binPath, bin)
			}
			committed := readSample(t, binPath)
			if !bytes.Equal(committed, bin) {
				t.Errorf("%s is stale: it is not the binary form of %s; run go test ./test/contract -update", binPath, path)
			}
			if enc, err := eventbus.Encode(eventbus.ContentTypeProto, msg); err != nil || !bytes.Equal(enc, bin) {
				t.Errorf("eventbus.Encode(protobuf) = %x, %v; want %x", enc, err, bin)
			}
			fromBin := c.New()
			if err := eventbus.Decode(eventbus.ContentTypeProto, committed, fromBin); err != nil {
				t.Fatalf("decode %s: %v", binPath, err)
			}
			if err := eventbus.Validate(fromBin); err != nil {
				t.Fatalf("validate %s: %v", binPath, err)
			}
			assertEqual(t, binPath, fromBin, msg)

			if filepath.Base(path) == "seed.json" {
				if seed := seeds[c.Subject]; seed != nil {
					assertEqual(t, "the seed's example", msg, seed)
				}
				// The seed's JSON is the wire format: what we encode is the
				// same JSON document, up to white space.
				assertSameJSON(t, out, data)
			}
		})
	}
}

// TestSeedValues spells the seed's values out field by field, so that a
// change of the Go types shows here in plain words.
func TestSeedValues(t *testing.T) {
	decode := func(t *testing.T, subject string, msg proto.Message) {
		t.Helper()
		if err := eventbus.Decode(eventbus.ContentTypeJSON, readSample(t, subject+"/seed.json"), msg); err != nil {
			t.Fatal(err)
		}
	}
	at := func(hour int) time.Time { return time.Date(2024, 1, 1, hour, 0, 0, 0, time.UTC) }

	created := new(activityv1.ActivityCreated)
	decode(t, activityv1.ActivityCreatedSubject, created)
	joined := new(activityv1.ActivityMemberJoined)
	decode(t, activityv1.ActivityMemberJoinedSubject, joined)
	left := new(activityv1.ActivityMemberLeft)
	decode(t, activityv1.ActivityMemberLeftSubject, left)

	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"created.ActivityId", created.GetActivityId(), "act_123456"},
		{"created.CreatorId", created.GetCreatorId(), "user_789"},
		{"created.Title", created.GetTitle(), "周末爬山活动"},
		{"created.CreatedAt", created.GetCreatedAt().AsTime(), at(10)},
		{"joined.ActivityId", joined.GetActivityId(), "act_123456"},
		{"joined.UserId", joined.GetUserId(), "user_456"},
		{"joined.JoinedAt", joined.GetJoinedAt().AsTime(), at(11)},
		{"left.ActivityId", left.GetActivityId(), "act_123456"},
		{"left.UserId", left.GetUserId(), "user_456"},
		{"left.LeftAt", left.GetLeftAt().AsTime(), at(12)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

// invalidSample is a sample that the subscriber must dead-letter.
type invalidSample struct {
	// path is "<subject>/invalid/<file>" under contracts/samples.
	path string
	// contentType is the message's Content-Type header; empty means the one
	// the file's extension implies (.json: JSON, .binpb: protobuf).
	contentType string
	// class is the eventbus sentinel the error matches besides ErrPermanent.
	class error
	// want are texts the error must contain: the field and what is wrong.
	want []string
	// build, when set, makes the file's content; -update writes it. Binary
	// samples that no JSON can express are made this way.
	build func() []byte
}

// invalidSamples lists every file under contracts/samples/*/invalid;
// TestInvalidSamples fails for a file the table misses. Rule violations name
// the proto field. Decode errors come from protojson, which names a scalar
// field by its JSON name (activityId) and a Timestamp not at all, so those
// rows pin the line:column and the offending value instead.
var invalidSamples = []invalidSample{
	// activity.created
	{path: "activity.created/invalid/missing_activity_id.json", class: eventbus.ErrInvalid, want: []string{"activity_id: is required"}},
	{path: "activity.created/invalid/missing_creator_id.json", class: eventbus.ErrInvalid, want: []string{"creator_id: is required"}},
	{path: "activity.created/invalid/missing_title.json", class: eventbus.ErrInvalid, want: []string{"title: is required"}},
	{path: "activity.created/invalid/missing_created_at.json", class: eventbus.ErrInvalid, want: []string{"created_at: is required"}},
	{path: "activity.created/invalid/empty_activity_id.json", class: eventbus.ErrInvalid, want: []string{"activity_id: is required"}},
	{path: "activity.created/invalid/null_creator_id.json", class: eventbus.ErrInvalid, want: []string{"creator_id: is required"}},
	{path: "activity.created/invalid/activity_id_too_long.json", class: eventbus.ErrInvalid, want: []string{"activity_id: must be at most 64 characters, got 65"}},
	{path: "activity.created/invalid/title_too_long.json", class: eventbus.ErrInvalid, want: []string{"title: must be at most 200 characters, got 201"}},
	{path: "activity.created/invalid/creator_id_bad_charset.json", class: eventbus.ErrInvalid, want: []string{"creator_id: has '用' at offset 0"}},
	{path: "activity.created/invalid/created_at_no_zone.json", class: eventbus.ErrDecode, want: []string{"(line 5:17)", `invalid google.protobuf.Timestamp value "2024-01-01T10:00:00"`}},
	{path: "activity.created/invalid/created_at_month_13.json", class: eventbus.ErrDecode, want: []string{"(line 5:17)", `"2024-13-01T10:00:00Z"`}},
	{path: "activity.created/invalid/created_at_unix_seconds.json", class: eventbus.ErrDecode, want: []string{"(line 5:17)", "unexpected token 1704103200"}},
	{path: "activity.created/invalid/activity_id_number.json", class: eventbus.ErrDecode, want: []string{"(line 2:18)", "string field activityId: 123456"}},
	{path: "activity.created/invalid/title_array.json", class: eventbus.ErrDecode, want: []string{"title", "["}},
	{path: "activity.created/invalid/truncated.json", class: eventbus.ErrDecode, want: []string{"activity.v1.ActivityCreated as application/json", "unexpected EOF"}},
	{path: "activity.created/invalid/unknown_content_type.xml", contentType: "application/xml", class: eventbus.ErrUnknownContentType, want: []string{`unknown content type: "application/xml"`}},
	{
		path: "activity.created/invalid/title_bad_utf8.binpb", class: eventbus.ErrDecode,
		want: []string{"activity.v1.ActivityCreated as application/protobuf", "invalid UTF-8"},
		build: func() []byte {
			b := mustMarshal(&activityv1.ActivityCreated{ActivityId: "act_123456", CreatorId: "user_789", CreatedAt: timestamppb.New(time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC))})
			b = protowire.AppendTag(b, 3, protowire.BytesType)
			return protowire.AppendBytes(b, []byte("周末\xff"))
		},
	},
	// activity.member.joined
	{path: "activity.member.joined/invalid/empty_object.json", class: eventbus.ErrInvalid, want: []string{"activity_id: is required"}},
	{path: "activity.member.joined/invalid/missing_user_id.json", class: eventbus.ErrInvalid, want: []string{"user_id: is required"}},
	{path: "activity.member.joined/invalid/missing_joined_at.json", class: eventbus.ErrInvalid, want: []string{"joined_at: is required"}},
	{path: "activity.member.joined/invalid/user_id_bad_charset.json", class: eventbus.ErrInvalid, want: []string{"user_id: has '/' at offset 4"}},
	{path: "activity.member.joined/invalid/joined_at_words.json", class: eventbus.ErrDecode, want: []string{"(line 4:16)", `"yesterday"`}},
	{path: "activity.member.joined/invalid/joined_at_year_9999.json", class: eventbus.ErrInvalid, want: []string{"joined_at: is 9999-12-31T23:59:59Z, more than 24h0m0s ahead of the clock"}},
	{path: "activity.member.joined/invalid/joined_at_bool.json", class: eventbus.ErrDecode, want: []string{"(line 4:16)", "unexpected token true"}},
	{path: "activity.member.joined/invalid/user_id_object.json", class: eventbus.ErrDecode, want: []string{"(line 3:14)", "string field userId"}},
	{path: "activity.member.joined/invalid/duplicate_user_id.json", class: eventbus.ErrDecode, want: []string{"duplicate field", "user_id"}},
	{path: "activity.member.joined/invalid/array.json", class: eventbus.ErrDecode, want: []string{"activity.v1.ActivityMemberJoined as application/json", "["}},
	{path: "activity.member.joined/invalid/seed_as_form.txt", contentType: "application/x-www-form-urlencoded", class: eventbus.ErrUnknownContentType, want: []string{`"application/x-www-form-urlencoded"`}},
	{
		path: "activity.member.joined/invalid/binary_as_json.binpb", contentType: eventbus.ContentTypeJSON, class: eventbus.ErrDecode,
		want:  []string{"activity.v1.ActivityMemberJoined as application/json"},
		build: func() []byte { return mustMarshal(contractSeed(activityv1.ActivityMemberJoinedSubject)) },
	},
	// activity.member.left
	{path: "activity.member.left/invalid/missing_activity_id.json", class: eventbus.ErrInvalid, want: []string{"activity_id: is required"}},
	{path: "activity.member.left/invalid/missing_left_at.json", class: eventbus.ErrInvalid, want: []string{"left_at: is required"}},
	{path: "activity.member.left/invalid/activity_id_too_long.json", class: eventbus.ErrInvalid, want: []string{"activity_id: must be at most 64 characters, got 65"}},
	{path: "activity.member.left/invalid/user_id_with_space.json", class: eventbus.ErrInvalid, want: []string{"user_id: has ' ' at offset 4"}},
	{path: "activity.member.left/invalid/left_at_number_string.json", class: eventbus.ErrDecode, want: []string{"(line 4:14)", `"1704110400"`}},
	{
		path: "activity.member.left/invalid/left_at_bad_nanos.binpb", class: eventbus.ErrInvalid,
		want: []string{"left_at: is not a valid timestamp"},
		build: func() []byte {
			return mustMarshal(&activityv1.ActivityMemberLeft{ActivityId: "act_123456", UserId: "user_456",
				LeftAt: &timestamppb.Timestamp{Seconds: 1704110400, Nanos: -1}})
		},
	},
	{
		// A string field sent as a number is skipped as an unknown field by
		// the binary decoder, so the event arrives without its id.
		path: "activity.member.left/invalid/activity_id_varint.binpb", class: eventbus.ErrInvalid,
		want: []string{"activity_id: is required"},
		build: func() []byte {
			b := protowire.AppendTag(nil, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, 123456)
			seed := proto.Clone(contractSeed(activityv1.ActivityMemberLeftSubject)).(*activityv1.ActivityMemberLeft)
			seed.ActivityId = ""
			return append(b, mustMarshal(seed)...)
		},
	},
}

// TestInvalidSamples checks that every invalid sample is rejected as the
// subscriber rejects it, by decoding and validating, with a permanent error
// that names the field and the problem.
func TestInvalidSamples(t *testing.T) {
	listed := make(map[string]bool)
	for _, tc := range invalidSamples {
		listed[tc.path] = true
		t.Run(tc.path, func(t *testing.T) {
			if tc.build != nil {
				built := tc.build()
				if *update {
					writeSample(t, tc.path, built)
				}
				if !bytes.Equal(readSample(t, tc.path), built) {
					t.Errorf("%s is stale; run go test ./test/contract -update", tc.path)
				}
			}
			subject, _, _ := strings.Cut(tc.path, "/"+invalidDir+"/")
			c := contractFor(t, subject)
			ct := tc.contentType
			if ct == "" {
				ct = map[string]string{".json": eventbus.ContentTypeJSON, ".binpb": eventbus.ContentTypeProto}[filepath.Ext(tc.path)]
			}
			if ct == "" {
				t.Fatalf("%s: say its content type in the table", tc.path)
			}

			msg := c.New()
			err := eventbus.Decode(ct, readSample(t, tc.path), msg)
			if err == nil {
				err = eventbus.Validate(msg)
			}
			if err == nil {
				t.Fatalf("accepted as %s:\n%s", ct, prototext.Format(msg))
			}
			if !errors.Is(err, eventbus.ErrPermanent) {
				t.Errorf("error %q is not permanent", err)
			}
			if !errors.Is(err, tc.class) {
				t.Errorf("error %q does not match %v", err, tc.class)
			}
			if tc.class == eventbus.ErrInvalid && !errors.Is(err, rules.ErrInvalid) {
				t.Errorf("error %q does not match rules.ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	paths, err := filepath.Glob(filepath.Join(samplesDir, "*", invalidDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		rel := filepath.ToSlash(strings.TrimPrefix(p, samplesDir+string(filepath.Separator)))
		if !listed[rel] {
			t.Errorf("%s is not in the invalidSamples table of this test: add it with the reason it must fail", rel)
		}
	}
}

func contractSeed(subject string) proto.Message {
	if seed, ok := seeds[subject]; ok {
		return seed
	}
	panic("no seed for subject " + subject)
}

func mustMarshal(m proto.Message) []byte {
	b, err := deterministic.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func readSample(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(samplesDir, filepath.FromSlash(path)))
	if err != nil {
		t.Fatalf("read sample: %v", err)
	}
	return data
}

func writeSample(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(samplesDir, filepath.FromSlash(path)), data, 0o644); err != nil {
		t.Fatalf("write sample: %v", err)
	}
}

func assertEqual(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("%s: got\n%s\nwant\n%s", what, prototext.Format(got), prototext.Format(want))
	}
}

// assertSameJSON checks that got and want are the same JSON document.
func assertSameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("encoded JSON\n%s\nis not the sample\n%s", got, want)
	}
}
