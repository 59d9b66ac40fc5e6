package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
)

// withoutJSONCodecs returns files without the <file>.json.go ones, which
// TestJSONCodecGolden checks.
func withoutJSONCodecs(files []*pluginpb.CodeGeneratorResponse_File) []*pluginpb.CodeGeneratorResponse_File {
	var out []*pluginpb.CodeGeneratorResponse_File
	for _, f := range files {
		if !strings.HasSuffix(f.GetName(), ".json.go") {
			out = append(out, f)
		}
	}
	return out
}

// jsonCodecFiles returns the content of the <file>.json.go files of resp by
// name.
func jsonCodecFiles(t *testing.T, resp *pluginpb.CodeGeneratorResponse) map[string]string {
	t.Helper()
	if resp.GetError() != "" {
		t.Fatalf("response error: %s", resp.GetError())
	}
	out := make(map[string]string)
	for _, f := range resp.GetFile() {
		if strings.HasSuffix(f.GetName(), ".json.go") {
			out[f.GetName()] = f.GetContent()
		}
	}
	return out
}

// TestJSONCodecGolden generates the test contracts as make generate does and
// compares their JSON codecs byte for byte with the committed files.
func TestJSONCodecGolden(t *testing.T) {
	t.Parallel()
	req := request("module=github.com/activitychat/chat/contracts",
		protodesc.ToFileDescriptorProto(testpbv1.File_eventchat_testing_v1_testing_proto),
		protodesc.ToFileDescriptorProto(testpbv1.File_eventchat_testing_v1_codec_proto))
	resp, err := runGenerate(t, req)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	got := jsonCodecFiles(t, resp)
	for _, name := range []string{"internal/testpb/v1/testing.json.go", "internal/testpb/v1/codec.json.go"} {
		want, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		content, ok := got[name]
		if !ok {
			t.Errorf("no %s generated; got %d codec files", name, len(got))
			continue
		}
		if content != string(want) {
			t.Errorf("generated %s differs from the committed file; if the change is intended, run make generate from the repository root and commit the result\n%s",
				name, lineDiff(string(want), content))
		}
		delete(got, name)
	}
	for name := range got {
		t.Errorf("unexpected codec file %s", name)
	}
}

// TestJSONCodecFallback checks which events get no codec, and that the
// generated file says why.
func TestJSONCodecFallback(t *testing.T) {
	t.Parallel()
	const (
		optional = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		repeated = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		tString  = descriptorpb.FieldDescriptorProto_TYPE_STRING
		tMessage = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
		tDouble  = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE
		tBytes   = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	)
	event := withEvent("bad.happened", "BAD")
	many := func(m *descriptorpb.DescriptorProto) {
		for i := range 65 {
			scalar("f"+strings.Repeat("x", i), tString, nil)(m)
		}
	}
	proto2 := func(f *descriptorpb.FileDescriptorProto) *descriptorpb.FileDescriptorProto {
		f.Syntax = proto.String("proto2")
		return f
	}
	for _, tc := range []struct {
		name string
		file *descriptorpb.FileDescriptorProto
		// want is in the codec file; "" means there is no codec file.
		want []string
		// not is not in the codec file.
		not []string
	}{
		{
			name: "supported",
			file: badFile(event, scalar("id", tString, nil), field("at", tMessage, optional, ".google.protobuf.Timestamp", nil)),
			want: []string{"func (x *Bad) UnmarshalEventJSON(data []byte) error", `case "id":`, "x.At, err = d.Timestamp()"},
			not:  []string{"protojson for it"},
		},
		{
			name: "repeated",
			file: badFile(event, field("tags", tString, repeated, "", nil)),
			want: []string{"// Bad has no generated JSON codec", "uses protojson for it: field bad.v1.Bad.tags is repeated."},
			not:  []string{"func (x *Bad)"},
		},
		{
			name: "map",
			file: badFile(event, stringMap("labels", nil)),
			want: []string{"field bad.v1.Bad.labels is a map."},
			not:  []string{"func (x *Bad)"},
		},
		{
			name: "double",
			file: badFile(event, scalar("ratio", tDouble, nil)),
			want: []string{"field bad.v1.Bad.ratio has kind double."},
		},
		{
			name: "bytes",
			file: badFile(event, scalar("blob", tBytes, nil)),
			want: []string{"field bad.v1.Bad.blob has kind bytes."},
		},
		{
			name: "recursive message with a bad field",
			file: badFile(event, field("next", tMessage, optional, ".bad.v1.Bad", nil), scalar("ratio", tDouble, nil)),
			want: []string{"field bad.v1.Bad.ratio has kind double."},
			not:  []string{"func (x *Bad)"},
		},
		{
			name: "recursive message",
			file: badFile(event, field("next", tMessage, optional, ".bad.v1.Bad", nil)),
			want: []string{"x.Next = new(Bad)", "err = x.Next.decodeEventJSON(d)", "if b, err = x.Next.AppendEventJSON(b); err != nil {"},
		},
		{
			name: "too many fields",
			file: badFile(event, many),
			want: []string{"bad.v1.Bad has more than 64 fields."},
		},
		{
			name: "no event",
			file: badFile(scalar("id", tString, nil)),
		},
		{
			name: "proto2",
			file: proto2(badFile(event, scalar("id", tString, nil))),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := runGenerate(t, request("paths=source_relative", tc.file))
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			files := jsonCodecFiles(t, resp)
			content, ok := files["bad/v1/bad.json.go"]
			if tc.want == nil {
				if len(files) != 0 {
					t.Fatalf("generated codec files %v, want none", files)
				}
				return
			}
			if !ok {
				t.Fatalf("no bad/v1/bad.json.go generated")
			}
			for _, s := range tc.want {
				if !strings.Contains(content, s) {
					t.Errorf("codec file lacks %q:\n%s", s, content)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(content, s) {
					t.Errorf("codec file has %q:\n%s", s, content)
				}
			}
		})
	}
}
