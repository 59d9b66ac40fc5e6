package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/pluginpb"

	optionsv1 "github.com/activitychat/chat/contracts/eventoptions/v1"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// asPluginEnv makes the test binary run main instead of the tests, so that
// the tests can exec the real plugin without building it first.
const asPluginEnv = "PROTOC_GEN_GO_EVENTS_TEST_AS_PLUGIN"

func TestMain(m *testing.M) {
	if os.Getenv(asPluginEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// goldenDir holds the committed output of make generate for the test
// contracts, relative to this package.
const goldenDir = "../internal/testpb/v1"

// goldenFiles are the test contracts of proto/eventchat/testing, as the
// descriptors compiled into testpb, and the generated file of each, if any.
var goldenFiles = []struct {
	desc      protoreflect.FileDescriptor
	generated string // base name of the .contract.go file; empty for none
}{
	{testpbv1.File_eventchat_testing_v1_testing_proto, "testing.contract.go"},
	{testpbv1.File_eventchat_testing_v1_policy_proto, "policy.contract.go"},
	{testpbv1.File_eventchat_testing_v1_rules_proto, "rules.contract.go"},
	{testpbv1.File_eventchat_testing_v1_codec_proto, "codec.contract.go"},
}

// request returns a CodeGeneratorRequest that asks for generate, holding
// every file of toGenerate and their imports, imports first, as protoc and
// buf send them.
func request(parameter string, toGenerate ...*descriptorpb.FileDescriptorProto) *pluginpb.CodeGeneratorRequest {
	req := &pluginpb.CodeGeneratorRequest{Parameter: proto.String(parameter)}
	seen := make(map[string]bool)
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := range fd.Imports().Len() {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(fd))
	}
	// The imports of the test files are the Go-registered ones: our options,
	// descriptor.proto and timestamp.proto.
	for _, deps := range []protoreflect.FileDescriptor{
		optionsv1.File_eventchat_options_v1_options_proto,
		timestamppb.File_google_protobuf_timestamp_proto,
	} {
		add(deps)
	}
	for _, f := range toGenerate {
		if !seen[f.GetName()] {
			seen[f.GetName()] = true
			req.ProtoFile = append(req.ProtoFile, f)
		}
		req.FileToGenerate = append(req.FileToGenerate, f.GetName())
	}
	return req
}

// goldenRequest returns the request buf sends for the test contracts.
func goldenRequest(parameter string) *pluginpb.CodeGeneratorRequest {
	var files []*descriptorpb.FileDescriptorProto
	for _, f := range goldenFiles {
		files = append(files, protodesc.ToFileDescriptorProto(f.desc))
	}
	return request(parameter, files...)
}

// runGenerate runs generate on req the way main does, and returns the
// response and generate's error. The request goes through the wire format
// first, so that the options arrive as they do from protoc: as extensions
// resolved from the registry.
func runGenerate(t *testing.T, req *pluginpb.CodeGeneratorRequest) (*pluginpb.CodeGeneratorResponse, error) {
	t.Helper()
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatalf("marshal request: %v", err)
	}
	req = new(pluginpb.CodeGeneratorRequest)
	if err := proto.Unmarshal(raw, req); err != nil {
		t.Fatalf("unmarshal request: %v", err)
	}
	plugin, err := protogen.Options{}.New(req)
	if err != nil {
		t.Fatalf("protogen: %v", err)
	}
	genErr := generate(plugin)
	return plugin.Response(), genErr
}

// execPlugin execs the test binary as the plugin with args and stdin.
func execPlugin(t *testing.T, stdin []byte, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asPluginEnv+"=1")
	cmd.Stdin = bytes.NewReader(stdin)
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	stdout, err = cmd.Output()
	return stdout, errBuf.Bytes(), err
}

// runPlugin execs the plugin and returns its standard output; it fails the
// test when the plugin exits with an error.
func runPlugin(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	out, stderr, err := execPlugin(t, stdin, args...)
	if err != nil {
		t.Fatalf("plugin %q: %v\nstderr: %s", args, err, stderr)
	}
	return out
}

// assertGolden checks that resp holds exactly the generated files of
// goldenFiles, each named dir + its base name, with the content of the
// committed golden file.
func assertGolden(t *testing.T, resp *pluginpb.CodeGeneratorResponse, dir string) {
	t.Helper()
	if resp.GetError() != "" {
		t.Fatalf("response error: %s", resp.GetError())
	}
	if got, want := resp.GetSupportedFeatures(), uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL); got != want {
		t.Errorf("SupportedFeatures = %d, want %d", got, want)
	}
	var want, got []string
	for _, f := range goldenFiles {
		if f.generated != "" {
			want = append(want, dir+f.generated)
		}
	}
	files := withoutJSONCodecs(resp.GetFile()) // jsoncodec_test.go checks those
	for _, f := range files {
		got = append(got, f.GetName())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("generated files %q, want %q", got, want)
	}
	for _, file := range files {
		golden := filepath.Join(goldenDir, path.Base(file.GetName()))
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got := file.GetContent(); got != string(want) {
			t.Errorf("generated code differs from %s; if the change is intended, run make generate from the repository root and commit the result\n%s",
				filepath.Clean(golden), lineDiff(string(want), got))
		}
	}
}

// lineDiff shows the first line where want and got part, with a little
// context: enough to see what changed without a diff library.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d (- committed, + generated):\n", i+1)
	for j := max(0, i-2); j < i; j++ {
		fmt.Fprintf(&b, "  %s\n", w[j])
	}
	for j := i; j < min(len(w), i+3); j++ {
		fmt.Fprintf(&b, "- %s\n", w[j])
	}
	for j := i; j < min(len(g), i+3); j++ {
		fmt.Fprintf(&b, "+ %s\n", g[j])
	}
	return b.String()
}

// TestGolden generates the test contracts as make generate does and compares
// the result byte for byte with the committed file.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		parameter string
		dir       string
	}{
		// contracts/buf.gen.yaml, which writes the golden files.
		{"module=github.com/activitychat/chat/contracts", "internal/testpb/v1/"},
		// buf.gen.yaml, which writes gen/.
		{"paths=source_relative", "eventchat/testing/v1/"},
		{"", "github.com/activitychat/chat/contracts/internal/testpb/v1/"},
	} {
		t.Run(tc.parameter, func(t *testing.T) {
			t.Parallel()
			resp, err := runGenerate(t, goldenRequest(tc.parameter))
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			assertGolden(t, resp, tc.dir)
		})
	}
}

// TestGoldenPlugin runs the plugin binary itself over stdin and stdout, as
// buf does, so that main and its parameter handling are covered too.
func TestGoldenPlugin(t *testing.T) {
	t.Parallel()
	req, err := proto.Marshal(goldenRequest("module=github.com/activitychat/chat/contracts"))
	if err != nil {
		t.Fatal(err)
	}
	resp := new(pluginpb.CodeGeneratorResponse)
	if err := proto.Unmarshal(runPlugin(t, req), resp); err != nil {
		t.Fatalf("unmarshal response: %v", err)
	}
	assertGolden(t, resp, "internal/testpb/v1/")
}

// TestPluginReportsErrors checks how the plugin binary fails: a contract it
// cannot honour is answered in the response, as protoc expects, and a
// parameter it does not know makes it exit with an error.
func TestPluginReportsErrors(t *testing.T) {
	t.Parallel()
	t.Run("bad contract", func(t *testing.T) {
		t.Parallel()
		raw, err := proto.Marshal(request("", badFile(withEvent("a.*", "S"))))
		if err != nil {
			t.Fatal(err)
		}
		resp := new(pluginpb.CodeGeneratorResponse)
		if err := proto.Unmarshal(runPlugin(t, raw), resp); err != nil {
			t.Fatalf("unmarshal response: %v", err)
		}
		if want := `bad.v1.Bad: (eventchat.options.v1.event).subject "a.*"`; !strings.Contains(resp.GetError(), want) {
			t.Errorf("response error %q, want it to contain %q", resp.GetError(), want)
		}
		if len(resp.GetFile()) != 0 {
			t.Errorf("response has %d files, want none", len(resp.GetFile()))
		}
	})
	t.Run("unknown parameter", func(t *testing.T) {
		t.Parallel()
		raw, err := proto.Marshal(goldenRequest("color=blue"))
		if err != nil {
			t.Fatal(err)
		}
		_, stderr, err := execPlugin(t, raw)
		if err == nil {
			t.Fatal("plugin succeeded, want it to fail")
		}
		if want := "no such flag -color"; !strings.Contains(string(stderr), want) {
			t.Errorf("stderr %q, want it to contain %q", stderr, want)
		}
	})
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--version", "-version"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			if got, want := string(runPlugin(t, nil, arg)), "protoc-gen-go-events v0.2.0\n"; got != want {
				t.Errorf("protoc-gen-go-events %s printed %q, want %q", arg, got, want)
			}
		})
	}
}

// msgOption is a change to the hand-built test message.
type msgOption func(*descriptorpb.DescriptorProto)

// withEvent sets the (eventchat.options.v1.event) option.
func withEvent(subject, stream string) msgOption {
	return func(m *descriptorpb.DescriptorProto) {
		if m.Options == nil {
			m.Options = new(descriptorpb.MessageOptions)
		}
		proto.SetExtension(m.Options, optionsv1.E_Event, &optionsv1.EventOptions{Subject: subject, Stream: stream})
	}
}

// field adds a field; typeName is only for message fields, rules may be nil.
func field(name string, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, typeName string, rules *optionsv1.FieldRules) msgOption {
	return func(m *descriptorpb.DescriptorProto) {
		f := &descriptorpb.FieldDescriptorProto{
			Name:     proto.String(name),
			JsonName: proto.String(name),
			Number:   proto.Int32(int32(len(m.Field) + 1)),
			Type:     typ.Enum(),
			Label:    label.Enum(),
		}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		if rules != nil {
			f.Options = new(descriptorpb.FieldOptions)
			proto.SetExtension(f.Options, optionsv1.E_Rules, rules)
		}
		m.Field = append(m.Field, f)
	}
}

// scalar adds a singular scalar field with rules.
func scalar(name string, typ descriptorpb.FieldDescriptorProto_Type, rules *optionsv1.FieldRules) msgOption {
	return field(name, typ, descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, "", rules)
}

// stringMap adds map<string, string> name with rules.
func stringMap(name string, rules *optionsv1.FieldRules) msgOption {
	return func(m *descriptorpb.DescriptorProto) {
		str := descriptorpb.FieldDescriptorProto_TYPE_STRING
		entry := &descriptorpb.DescriptorProto{
			Name:    proto.String("LabelsEntry"),
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		}
		scalar("key", str, nil)(entry)
		scalar("value", str, nil)(entry)
		m.NestedType = append(m.NestedType, entry)
		field(name, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, descriptorpb.FieldDescriptorProto_LABEL_REPEATED, ".bad.v1.Bad.LabelsEntry", rules)(m)
	}
}

// badFile returns bad/v1/bad.proto, package bad.v1, with one message Bad
// built by opts.
func badFile(opts ...msgOption) *descriptorpb.FileDescriptorProto {
	msg := &descriptorpb.DescriptorProto{Name: proto.String("Bad")}
	for _, o := range opts {
		o(msg)
	}
	return &descriptorpb.FileDescriptorProto{
		Name:        proto.String("bad/v1/bad.proto"),
		Package:     proto.String("bad.v1"),
		Syntax:      proto.String("proto3"),
		Dependency:  []string{"eventchat/options/v1/options.proto", "google/protobuf/timestamp.proto"},
		Options:     &descriptorpb.FileOptions{GoPackage: proto.String("example.com/bad/v1;badv1")},
		MessageType: []*descriptorpb.DescriptorProto{msg},
	}
}

// TestGenerateErrors checks that generate refuses contracts it cannot honour,
// naming the message or field and what is wrong.
func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	const (
		optional  = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		repeated  = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		tString   = descriptorpb.FieldDescriptorProto_TYPE_STRING
		tMessage  = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
		tBool     = descriptorpb.FieldDescriptorProto_TYPE_BOOL
		tUint32   = descriptorpb.FieldDescriptorProto_TYPE_UINT32
		tInt64    = descriptorpb.FieldDescriptorProto_TYPE_INT64
		timestamp = ".google.protobuf.Timestamp"
	)
	for _, tc := range []struct {
		name string
		file *descriptorpb.FileDescriptorProto
		want string
	}{
		{
			name: "subject with wildcard",
			file: badFile(withEvent("a.*", "ACTIVITY")),
			want: `bad.v1.Bad: (eventchat.options.v1.event).subject "a.*": must be a literal subject: dot-separated tokens without wildcards or spaces`,
		},
		{
			name: "subject with full wildcard",
			file: badFile(withEvent("activity.>", "ACTIVITY")),
			want: `bad.v1.Bad: (eventchat.options.v1.event).subject "activity.>": must be a literal subject`,
		},
		{
			name: "subject with empty token",
			file: badFile(withEvent("activity..created", "ACTIVITY")),
			want: `bad.v1.Bad: (eventchat.options.v1.event).subject "activity..created": must be a literal subject`,
		},
		{
			name: "subject with space",
			file: badFile(withEvent("activity.new one", "ACTIVITY")),
			want: `bad.v1.Bad: (eventchat.options.v1.event).subject "activity.new one": must be a literal subject`,
		},
		{
			name: "subject ending in .dlq",
			file: badFile(withEvent("activity.created.dlq", "ACTIVITY")),
			want: `bad.v1.Bad: (eventchat.options.v1.event).subject "activity.created.dlq": must not end in .dlq, which names dead-letter subjects`,
		},
		{
			name: "empty subject",
			file: badFile(withEvent("", "ACTIVITY")),
			want: `bad.v1.Bad: (eventchat.options.v1.event).subject "": is required`,
		},
		{
			name: "empty stream",
			file: badFile(withEvent("activity.created", "")),
			want: `bad.v1.Bad: (eventchat.options.v1.event).stream "": is required`,
		},
		{
			name: "stream with dot",
			file: badFile(withEvent("activity.created", "ACTIVITY.V1")),
			want: `bad.v1.Bad: (eventchat.options.v1.event).stream "ACTIVITY.V1": must not contain '.', '*', '>', '/', '\' or white space`,
		},
		{
			name: "rules on repeated field",
			file: badFile(field("tags", tString, repeated, "", &optionsv1.FieldRules{Required: true})),
			want: "bad.v1.Bad.tags: rules on repeated and map fields are not supported",
		},
		{
			name: "rules on map field",
			file: badFile(stringMap("labels", &optionsv1.FieldRules{Required: true})),
			want: "bad.v1.Bad.labels: rules on repeated and map fields are not supported",
		},
		{
			name: "max on string",
			file: badFile(scalar("title", tString, &optionsv1.FieldRules{Required: true, Max: 10})),
			want: "bad.v1.Bad.title: rule max does not apply to a string field",
		},
		{
			name: "id on timestamp",
			file: badFile(field("at", tMessage, optional, timestamp, &optionsv1.FieldRules{Required: true, Id: true})),
			want: "bad.v1.Bad.at: rule id does not apply to a google.protobuf.Timestamp field",
		},
		{
			name: "max_len on message",
			file: badFile(field("detail", tMessage, optional, ".bad.v1.Bad", &optionsv1.FieldRules{MaxLen: 3})),
			want: "bad.v1.Bad.detail: rule max_len does not apply to a bad.v1.Bad field",
		},
		{
			name: "min_len on uint32",
			file: badFile(scalar("count", tUint32, &optionsv1.FieldRules{MinLen: 1})),
			want: "bad.v1.Bad.count: rule min_len does not apply to a uint32 field",
		},
		{
			name: "rules on bool",
			file: badFile(scalar("flag", tBool, &optionsv1.FieldRules{Required: true})),
			want: "bad.v1.Bad.flag: rules on bool fields are not supported",
		},
		{
			name: "rules on signed integer",
			file: badFile(scalar("delta", tInt64, &optionsv1.FieldRules{Max: 5})),
			want: "bad.v1.Bad.delta: rules on int64 fields are not supported",
		},
		{
			name: "bad rule after good ones",
			file: badFile(
				withEvent("activity.created", "ACTIVITY"),
				scalar("id", tString, &optionsv1.FieldRules{Required: true, Id: true}),
				scalar("flag", tBool, &optionsv1.FieldRules{}),
			),
			want: "bad.v1.Bad.flag: rules on bool fields are not supported",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := runGenerate(t, request("paths=source_relative", tc.file))
			if err == nil {
				t.Fatalf("generate succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("generate error:\n\t%s\nwant it to contain:\n\t%s", err, tc.want)
			}
		})
	}
}

// TestGenerateNothing checks that files without events or rules get no
// output, and that an event without rules gets no Validate method.
func TestGenerateNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		file      *descriptorpb.FileDescriptorProto
		wantFiles int
		wantText  []string
		wantNot   []string
	}{
		{
			name: "plain message",
			file: badFile(scalar("id", descriptorpb.FieldDescriptorProto_TYPE_STRING, nil)),
		},
		{
			name:      "event without rules",
			file:      badFile(withEvent("bad.happened", "BAD")),
			wantFiles: 1,
			wantText:  []string{`const BadSubject = "bad.happened"`, `const BadStream = "BAD"`, "return slog.GroupValue()"},
			wantNot:   []string{"Validate", "rules."},
		},
		{
			name:      "rules without event",
			file:      badFile(scalar("id", descriptorpb.FieldDescriptorProto_TYPE_STRING, &optionsv1.FieldRules{Required: true})),
			wantFiles: 1,
			wantText:  []string{"func (x *Bad) Validate() error", `rules.CheckString("id", x.GetId(), rules.String{Required: true})`},
			wantNot:   []string{"Subject", "eventbus.", "LogValue"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := runGenerate(t, request("paths=source_relative", tc.file))
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			files := withoutJSONCodecs(resp.GetFile())
			if len(files) != tc.wantFiles {
				t.Fatalf("generated %d files, want %d", len(files), tc.wantFiles)
			}
			if tc.wantFiles == 0 {
				return
			}
			if got, want := files[0].GetName(), "bad/v1/bad.contract.go"; got != want {
				t.Errorf("file name %q, want %q", got, want)
			}
			content := files[0].GetContent()
			for _, s := range tc.wantText {
				if !strings.Contains(content, s) {
					t.Errorf("generated code lacks %q:\n%s", s, content)
				}
			}
			for _, s := range tc.wantNot {
				if strings.Contains(content, s) {
					t.Errorf("generated code has %q:\n%s", s, content)
				}
			}
		})
	}
}
