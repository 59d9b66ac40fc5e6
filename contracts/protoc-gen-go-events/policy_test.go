package main

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	optionsv1 "github.com/activitychat/chat/contracts/eventoptions/v1"
)

// withPolicy sets the (eventchat.options.v1.event) option with policy p.
func withPolicy(p *optionsv1.DeliveryPolicy) msgOption {
	return func(m *descriptorpb.DescriptorProto) {
		if m.Options == nil {
			m.Options = new(descriptorpb.MessageOptions)
		}
		proto.SetExtension(m.Options, optionsv1.E_Event, &optionsv1.EventOptions{Subject: "bad.happened", Stream: "BAD", Policy: p})
	}
}

// policyFile returns bad.proto with an event Bad with policy p and the
// fields id (string), at (Timestamp), tags (repeated string), flag (bool)
// and count (int64).
func policyFile(p *optionsv1.DeliveryPolicy) *descriptorpb.FileDescriptorProto {
	const (
		optional = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		repeated = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	)
	return badFile(
		withPolicy(p),
		scalar("id", descriptorpb.FieldDescriptorProto_TYPE_STRING, nil),
		field("at", descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, optional, ".google.protobuf.Timestamp", nil),
		field("tags", descriptorpb.FieldDescriptorProto_TYPE_STRING, repeated, "", nil),
		scalar("flag", descriptorpb.FieldDescriptorProto_TYPE_BOOL, nil),
		scalar("count", descriptorpb.FieldDescriptorProto_TYPE_INT64, nil),
	)
}

// TestPolicyErrors checks that every policy option is checked, and that the
// error names the file, the message, the option field and its value.
func TestPolicyErrors(t *testing.T) {
	t.Parallel()
	const prefix = `bad/v1/bad.proto: bad.v1.Bad: (eventchat.options.v1.event).policy.`
	for _, tc := range []struct {
		name   string
		policy *optionsv1.DeliveryPolicy
		want   string
	}{
		{"max_retries too many", &optionsv1.DeliveryPolicy{MaxRetries: proto.Uint32(1001)},
			`max_retries 1001: must be at most 1000`},
		{"initial_backoff not a duration", &optionsv1.DeliveryPolicy{InitialBackoff: "fast"},
			`initial_backoff "fast": is not a Go duration such as "250ms", "10s" or "2m"`},
		{"initial_backoff without unit", &optionsv1.DeliveryPolicy{InitialBackoff: "100"},
			`initial_backoff "100": is not a Go duration`},
		{"initial_backoff zero", &optionsv1.DeliveryPolicy{InitialBackoff: "0s"},
			`initial_backoff "0s": must be positive`},
		{"initial_backoff negative", &optionsv1.DeliveryPolicy{InitialBackoff: "-1s"},
			`initial_backoff "-1s": must be positive`},
		{"initial_backoff above the default max_backoff", &optionsv1.DeliveryPolicy{InitialBackoff: "20s"},
			`initial_backoff "20s": must not exceed max_backoff, which defaults to 10s; set max_backoff too`},
		{"max_backoff not a duration", &optionsv1.DeliveryPolicy{MaxBackoff: "soon"},
			`max_backoff "soon": is not a Go duration`},
		{"max_backoff below initial_backoff", &optionsv1.DeliveryPolicy{InitialBackoff: "1s", MaxBackoff: "500ms"},
			`max_backoff "500ms": must not be less than initial_backoff (1s)`},
		{"max_backoff below the default initial_backoff", &optionsv1.DeliveryPolicy{MaxBackoff: "50ms"},
			`max_backoff "50ms": must not be less than initial_backoff (100ms)`},
		{"backoff_multiplier below 1", &optionsv1.DeliveryPolicy{BackoffMultiplier: proto.Float64(0.5)},
			`backoff_multiplier 0.5: must be at least 1 and finite`},
		{"backoff_multiplier zero", &optionsv1.DeliveryPolicy{BackoffMultiplier: proto.Float64(0)},
			`backoff_multiplier 0: must be at least 1 and finite`},
		{"backoff_multiplier infinite", &optionsv1.DeliveryPolicy{BackoffMultiplier: proto.Float64(math.Inf(1))},
			`backoff_multiplier +Inf: must be at least 1 and finite`},
		{"backoff_multiplier NaN", &optionsv1.DeliveryPolicy{BackoffMultiplier: proto.Float64(math.NaN())},
			`backoff_multiplier NaN: must be at least 1 and finite`},
		{"max_hold not a duration", &optionsv1.DeliveryPolicy{MaxHold: "2 minutes"},
			`max_hold "2 minutes": is not a Go duration`},
		{"max_hold negative", &optionsv1.DeliveryPolicy{MaxHold: "-1m"},
			`max_hold "-1m": must not be negative`},
		{"ordering_key unknown", &optionsv1.DeliveryPolicy{OrderingKey: "user_id"},
			`ordering_key "user_id": names no field of bad.v1.Bad`},
		{"ordering_key by JSON name", &optionsv1.DeliveryPolicy{OrderingKey: "Id"},
			`ordering_key "Id": names no field of bad.v1.Bad`},
		{"ordering_key repeated", &optionsv1.DeliveryPolicy{OrderingKey: "tags"},
			`ordering_key "tags": must name a singular field, not a repeated or map field`},
		{"ordering_key message", &optionsv1.DeliveryPolicy{OrderingKey: "at"},
			`ordering_key "at": must name a string or integer field, not a message field`},
		{"ordering_key bool", &optionsv1.DeliveryPolicy{OrderingKey: "flag"},
			`ordering_key "flag": must name a string or integer field, not a bool field`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := runGenerate(t, request("paths=source_relative", policyFile(tc.policy)))
			if err == nil {
				t.Fatalf("generate succeeded, want an error containing %q", prefix+tc.want)
			}
			if !strings.Contains(err.Error(), prefix+tc.want) {
				t.Errorf("generate error:\n\t%s\nwant it to contain:\n\t%s", err, prefix+tc.want)
			}
		})
	}
}

// TestPolicyGenerated checks the Go code generated for each policy option:
// the resolved value, the defaults for what the proto leaves out, and that
// SubscribeX applies the policy before its caller's options.
func TestPolicyGenerated(t *testing.T) {
	t.Parallel()
	defaults := []string{
		"MaxRetries:      3,",
		"InitialInterval: 100 * time.Millisecond,",
		"MaxInterval:     10 * time.Second,",
		"Multiplier:      2,",
		"MaxHold:         2 * time.Minute,",
		"DeadLetter: true,",
	}
	for _, tc := range []struct {
		name     string
		file     *descriptorpb.FileDescriptorProto
		wantText []string
		wantNot  []string
	}{
		{
			name:    "no policy",
			file:    badFile(withEvent("bad.happened", "BAD")),
			wantNot: []string{"Policy", `time "time"`},
			wantText: []string{
				"func SubscribeBad(r *eventbus.Router, h BadHandler, opts ...eventbus.SubscribeOption) {\n\teventbus.Subscribe(r, BadEvent",
			},
		},
		{
			name: "empty policy",
			file: policyFile(&optionsv1.DeliveryPolicy{}),
			wantText: append([]string{
				"var BadPolicy = eventbus.Policy{",
				"opts = append([]eventbus.SubscribeOption{BadPolicy}, opts...)\n\teventbus.Subscribe(r, BadEvent",
				"Policy:  &BadPolicy,",
			}, defaults...),
			wantNot: []string{"OrderingKey"},
		},
		{
			name:     "max_retries",
			file:     policyFile(&optionsv1.DeliveryPolicy{MaxRetries: proto.Uint32(7)}),
			wantText: []string{"MaxRetries:      7,", "MaxHold:         2 * time.Minute,"},
		},
		{
			name:     "max_retries zero",
			file:     policyFile(&optionsv1.DeliveryPolicy{MaxRetries: proto.Uint32(0)}),
			wantText: []string{"MaxRetries:      0,"},
		},
		{
			name:     "initial_backoff",
			file:     policyFile(&optionsv1.DeliveryPolicy{InitialBackoff: "1.5s"}),
			wantText: []string{"InitialInterval: 1500 * time.Millisecond,", "MaxInterval:     10 * time.Second,"},
		},
		{
			name:     "max_backoff",
			file:     policyFile(&optionsv1.DeliveryPolicy{MaxBackoff: "2h"}),
			wantText: []string{"MaxInterval:     2 * time.Hour,"},
		},
		{
			name:     "backoff_multiplier",
			file:     policyFile(&optionsv1.DeliveryPolicy{BackoffMultiplier: proto.Float64(1.25)}),
			wantText: []string{"Multiplier:      1.25,"},
		},
		{
			name:     "max_hold",
			file:     policyFile(&optionsv1.DeliveryPolicy{MaxHold: "1m30s"}),
			wantText: []string{"MaxHold:         90 * time.Second,"},
		},
		{
			name:     "max_hold off",
			file:     policyFile(&optionsv1.DeliveryPolicy{MaxHold: "0s"}),
			wantText: []string{"MaxHold:         0,"},
		},
		{
			name:     "dead_letter off",
			file:     policyFile(&optionsv1.DeliveryPolicy{DeadLetter: proto.Bool(false)}),
			wantText: []string{"DeadLetter: false,"},
		},
		{
			name:     "dead_letter on",
			file:     policyFile(&optionsv1.DeliveryPolicy{DeadLetter: proto.Bool(true)}),
			wantText: []string{"DeadLetter: true,"},
		},
		{
			name:     "ordering_key string",
			file:     policyFile(&optionsv1.DeliveryPolicy{OrderingKey: "id"}),
			wantText: []string{`OrderingKey: "id",`},
		},
		{
			name:     "ordering_key integer",
			file:     policyFile(&optionsv1.DeliveryPolicy{OrderingKey: "count"}),
			wantText: []string{`OrderingKey: "count",`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := runGenerate(t, request("paths=source_relative", tc.file))
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			files := withoutJSONCodecs(resp.GetFile())
			if len(files) != 1 {
				t.Fatalf("generated %d files, want 1", len(files))
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
