package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	optionsv1 "github.com/activitychat/chat/contracts/eventoptions/v1"
	testpbv1 "github.com/activitychat/chat/contracts/internal/testpb/v1"
	"github.com/activitychat/chat/contracts/rules"
)

// TestValidateNested runs the generated Validate methods of the test
// contracts: the rules of nested messages hold, in singular and repeated
// fields, several levels deep and across files, with the path of the
// offending field in the error.
func TestValidateNested(t *testing.T) {
	t.Parallel()
	header := func() *testpbv1.Envelope_Header { return &testpbv1.Envelope_Header{TraceId: "t-1"} }
	for _, tc := range []struct {
		name string
		msg  interface{ Validate() error }
		want string // empty for valid
	}{
		{"ping with detail", &testpbv1.Ping{Id: "p", SentAt: timestamppb.New(time.Unix(0, 0)), Detail: &testpbv1.Ping_Detail{Kind: "k"}}, ""},
		{"ping detail without kind", &testpbv1.Ping{Id: "p", SentAt: timestamppb.New(time.Unix(0, 0)), Detail: &testpbv1.Ping_Detail{}},
			"detail.kind: is required"},
		{"ping without detail", &testpbv1.Ping{Id: "p", SentAt: timestamppb.New(time.Unix(0, 0))}, "detail: is required"},
		{"envelope valid", &testpbv1.Envelope{
			Header: &testpbv1.Envelope_Header{TraceId: "t-1", Origin: &testpbv1.Envelope_Header_Origin{Host: "a.example"}},
			Items:  []*testpbv1.Envelope_Item{{Sku: "a", Quantity: 1}, {Sku: "b", Quantity: 99}},
			Wrapper: &testpbv1.Wrapper{
				Item:   &testpbv1.Envelope_Item{Sku: "c"},
				Detail: &testpbv1.Ping_Detail{Kind: "k"},
				Plain:  &testpbv1.Plain{Note: "anything"},
			},
			Labels: map[string]string{"any": ""},
		}, ""},
		{"envelope without header", &testpbv1.Envelope{}, "header: is required"},
		{"header without trace id", &testpbv1.Envelope{Header: &testpbv1.Envelope_Header{}}, "header.trace_id: is required"},
		{"origin host too long", &testpbv1.Envelope{Header: &testpbv1.Envelope_Header{TraceId: "t", Origin: &testpbv1.Envelope_Header_Origin{Host: strings.Repeat("h", 17)}}},
			"header.origin.host: must be at most 16 characters, got 17"},
		{"second item without sku", &testpbv1.Envelope{Header: header(), Items: []*testpbv1.Envelope_Item{{Sku: "a"}, {}}},
			"items[1].sku: is required"},
		{"first item too many", &testpbv1.Envelope{Header: header(), Items: []*testpbv1.Envelope_Item{{Sku: "a", Quantity: 100}}},
			"items[0].quantity: must be at most 99, got 100"},
		{"wrapper item", &testpbv1.Envelope{Header: header(), Wrapper: &testpbv1.Wrapper{Item: &testpbv1.Envelope_Item{}}},
			"wrapper.item.sku: is required"},
		{"wrapper detail from another file", &testpbv1.Envelope{Header: header(), Wrapper: &testpbv1.Wrapper{Detail: &testpbv1.Ping_Detail{}}},
			"wrapper.detail.kind: is required"},
		{"wrapper alone", &testpbv1.Wrapper{Detail: &testpbv1.Ping_Detail{}}, "detail.kind: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.msg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			var fe *rules.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, rules.ErrInvalid) {
				t.Errorf("Validate() = %#v, want a *rules.FieldError that matches rules.ErrInvalid", err)
			}
			if field, _, _ := strings.Cut(tc.want, ": "); fe != nil && fe.Field != field {
				t.Errorf("FieldError.Field = %q, want %q", fe.Field, field)
			}
		})
	}
	// A message without rules, nested or its own, gets no Validate method.
	if _, ok := any(&testpbv1.Plain{}).(interface{ Validate() error }); ok {
		t.Error("Plain has a Validate method, want none: it has no rules")
	}
}

// TestNestedMapValuesRefused checks that a map whose values are messages
// with rules fails generation: Validate cannot check them, and silently not
// checking them is what nested rules are meant to end.
func TestNestedMapValuesRefused(t *testing.T) {
	t.Parallel()
	file := badFile(withEvent("bad.happened", "BAD"), func(m *descriptorpb.DescriptorProto) {
		detail := &descriptorpb.DescriptorProto{Name: proto.String("Detail")}
		scalar("kind", descriptorpb.FieldDescriptorProto_TYPE_STRING, &optionsv1.FieldRules{Required: true})(detail)
		entry := &descriptorpb.DescriptorProto{
			Name:    proto.String("DetailsEntry"),
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		}
		scalar("key", descriptorpb.FieldDescriptorProto_TYPE_STRING, nil)(entry)
		field("value", descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, ".bad.v1.Bad.Detail", nil)(entry)
		m.NestedType = append(m.NestedType, detail, entry)
		field("details", descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, descriptorpb.FieldDescriptorProto_LABEL_REPEATED, ".bad.v1.Bad.DetailsEntry", nil)(m)
	})
	_, err := runGenerate(t, request("", file))
	want := "bad/v1/bad.proto: bad.v1.Bad.details: the values of this map are bad.v1.Bad.Detail messages, which have rules; " +
		"Validate cannot check rules inside map values, use a repeated field"
	if err == nil || err.Error() != want {
		t.Errorf("generate error:\n\t%v\nwant:\n\t%s", err, want)
	}
}

// TestErrorLocation checks that errors name the line and column of the
// offending declaration when the request carries source info, as buf and
// protoc send it, falling back to the enclosing declaration.
func TestErrorLocation(t *testing.T) {
	t.Parallel()
	loc := func(line, col int32, path ...int32) *descriptorpb.SourceCodeInfo_Location {
		return &descriptorpb.SourceCodeInfo_Location{Path: path, Span: []int32{line, col, line + 1}}
	}
	const (
		message   = 4     // FileDescriptorProto.message_type
		fieldNum  = 2     // DescriptorProto.field
		options   = 7     // DescriptorProto.options
		event     = 51001 // (eventchat.options.v1.event)
		policy    = 3     // EventOptions.policy
		maxBackof = 3     // DeliveryPolicy.max_backoff
	)
	for _, tc := range []struct {
		name string
		file func() *descriptorpb.FileDescriptorProto
		locs []*descriptorpb.SourceCodeInfo_Location
		want string
	}{
		{
			name: "policy field",
			file: func() *descriptorpb.FileDescriptorProto {
				return policyFile(&optionsv1.DeliveryPolicy{MaxBackoff: "1ms"})
			},
			locs: []*descriptorpb.SourceCodeInfo_Location{loc(9, 0, message, 0), loc(14, 4, message, 0, options, event, policy, maxBackof)},
			want: `bad/v1/bad.proto:15:5: bad.v1.Bad: (eventchat.options.v1.event).policy.max_backoff "1ms"`,
		},
		{
			name: "policy field without its own location",
			file: func() *descriptorpb.FileDescriptorProto {
				return policyFile(&optionsv1.DeliveryPolicy{MaxBackoff: "1ms"})
			},
			locs: []*descriptorpb.SourceCodeInfo_Location{loc(9, 0, message, 0), loc(11, 2, message, 0, options, event)},
			want: `bad/v1/bad.proto:12:3: bad.v1.Bad: (eventchat.options.v1.event).policy.max_backoff "1ms"`,
		},
		{
			name: "field rule",
			file: func() *descriptorpb.FileDescriptorProto {
				return badFile(scalar("flag", descriptorpb.FieldDescriptorProto_TYPE_BOOL, &optionsv1.FieldRules{Required: true}))
			},
			locs: []*descriptorpb.SourceCodeInfo_Location{loc(9, 0, message, 0), loc(20, 2, message, 0, fieldNum, 0)},
			want: "bad/v1/bad.proto:21:3: bad.v1.Bad.flag: rules on bool fields are not supported",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := tc.file()
			file.SourceCodeInfo = &descriptorpb.SourceCodeInfo{Location: tc.locs}
			_, err := runGenerate(t, request("", file))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("generate error:\n\t%v\nwant it to start with:\n\t%s", err, tc.want)
			}
		})
	}
}
