package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/activitychat/chat/contracts/eventbus"
	eventoptionsv1 "github.com/activitychat/chat/contracts/eventoptions/v1"
)

// timestampName is the full name of google.protobuf.Timestamp, whose fields
// take RFC 3339 times and default to --at.
const timestampName protoreflect.FullName = "google.protobuf.Timestamp"

// publishEvent is one event that publish offers, with a flag per field of
// its message, all derived from the registry entry and the message's
// descriptor, so that a new event in the contract needs no edit here.
type publishEvent struct {
	// name is the last part of the subject ("joined" for
	// "activity.member.joined"), or the whole subject when another event's
	// subject ends alike.
	name   string
	info   eventbus.EventInfo
	fields []fieldFlag
}

// fieldFlag is the flag of one field of an event.
type fieldFlag struct {
	flag     string // "activity" for activity_id
	field    protoreflect.FieldDescriptor
	required bool // the field's rules require it
	time     bool // a google.protobuf.Timestamp
}

// fixedFlags are the flags every event's publish has besides its fields'.
var fixedFlags = map[string]bool{"at": true, "binary": true, "msg-id": true, "f": true, "nats": true, "h": true, "help": true}

// newPublishEvents derives the publish commands of the events of reg.
func newPublishEvents(reg eventbus.Registry) []*publishEvent {
	last := map[string]int{}
	for _, info := range reg {
		last[lastToken(info.Subject)]++
	}
	out := make([]*publishEvent, 0, len(reg))
	for _, info := range reg {
		ev := &publishEvent{name: info.Subject, info: info}
		if t := lastToken(info.Subject); last[t] == 1 && t != "raw" {
			ev.name = t
		}
		fields := info.New().ProtoReflect().Descriptor().Fields()
		taken := map[string]bool{}
		for i := range fields.Len() {
			fd := fields.Get(i)
			ff := fieldFlag{field: fd, time: fd.Message() != nil && fd.Message().FullName() == timestampName}
			if rules, ok := proto.GetExtension(fd.Options(), eventoptionsv1.E_Rules).(*eventoptionsv1.FieldRules); ok {
				ff.required = rules.GetRequired()
			}
			ff.flag = strings.ReplaceAll(strings.TrimSuffix(string(fd.Name()), "_id"), "_", "-")
			if fixedFlags[ff.flag] || taken[ff.flag] {
				ff.flag = strings.ReplaceAll(string(fd.Name()), "_", "-")
			}
			taken[ff.flag] = true
			ev.fields = append(ev.fields, ff)
		}
		out = append(out, ev)
	}
	return out
}

// lastToken returns the last dot-separated token of subject.
func lastToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// metavar is the placeholder of a field's value in help.
func (f fieldFlag) metavar() string {
	switch {
	case f.time:
		return "time"
	case strings.HasSuffix(string(f.field.Name()), "_id"):
		return "id"
	case f.field.Kind() == protoreflect.StringKind:
		return "text"
	}
	return "json"
}

// register defines the flags of ev's fields on fs.
func (ev *publishEvent) register(fs *flag.FlagSet) map[string]*string {
	vals := make(map[string]*string, len(ev.fields))
	for _, f := range ev.fields {
		usage := fmt.Sprintf("the `%s` of %s", f.metavar(), f.field.Name())
		switch {
		case f.time:
			usage += ", RFC 3339; default --at"
		case f.metavar() == "json":
			usage += ", as in its JSON form"
		}
		if f.required && !f.time {
			usage += " (required)"
		}
		vals[f.flag] = fs.String(f.flag, "", usage)
	}
	return vals
}

// usageLines returns ev's lines of the publish usage.
func (ev *publishEvent) usageLines() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  chatconsumer publish %s", ev.name)
	for _, f := range ev.fields {
		if f.time {
			continue
		}
		arg := fmt.Sprintf("--%s %s", f.flag, strings.ToUpper(f.metavar()))
		if !f.required {
			arg = "[" + arg + "]"
		}
		b.WriteString(" " + arg)
	}
	b.WriteString(" [--at TIME] [--binary] [--msg-id ID]\n")
	fmt.Fprintf(&b, "  chatconsumer publish %s JSON|- [--binary] [--msg-id ID]\n", ev.name)
	return b.String()
}

// publisher builds the event from JSON (pos) or from its fields' flags,
// validates it, and returns the call of the generic publisher.
func (ev *publishEvent) publisher(pos []string, vals map[string]*string, at string, binary bool, msgID string, stdin io.Reader) (func(context.Context, *toolConn) (*jetstream.PubAck, string, error), error) {
	msg := ev.info.New()
	var data []byte
	switch {
	case len(pos) > 1:
		return nil, usageErrorf("publish %s: unexpected argument %q", ev.name, pos[1])
	case len(pos) == 1:
		for _, f := range ev.fields {
			if *vals[f.flag] != "" {
				return nil, usageErrorf("publish %s: give the event as JSON or by flags, not both (--%s)", ev.name, f.flag)
			}
		}
		data = []byte(pos[0])
		if pos[0] == "-" {
			var err error
			if data, err = io.ReadAll(stdin); err != nil {
				return nil, err
			}
		}
	default:
		var err error
		if data, err = ev.flagsJSON(vals, at); err != nil {
			return nil, err
		}
	}
	if err := protojson.Unmarshal(data, msg); err != nil {
		return nil, usageErrorf("publish %s: %v", ev.name, err)
	}
	if v, ok := msg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, usageErrorf("publish %s: %v%s", ev.name, err, ev.flagHint(err))
		}
	}
	opts := eventPublishOptions(binary, msgID)
	return func(ctx context.Context, tc *toolConn) (*jetstream.PubAck, string, error) {
		ack, err := eventbus.Publish(ctx, tc.js, ev.info.Event(), msg, opts...)
		return ack, ev.info.Subject, err
	}, nil
}

// flagsJSON returns the event's JSON form from its fields' flags; time
// fields left out take --at, or now.
func (ev *publishEvent) flagsJSON(vals map[string]*string, at string) ([]byte, error) {
	obj := map[string]json.RawMessage{}
	for _, f := range ev.fields {
		v := *vals[f.flag]
		switch {
		case f.time:
			name := f.flag
			if v == "" {
				name, v = "at", at
			}
			t, err := eventTime(name, v)
			if err != nil {
				return nil, err
			}
			obj[string(f.field.Name())] = encodeJSON(t.UTC().Format(time.RFC3339Nano))
		case v == "":
		case f.field.Kind() == protoreflect.StringKind || f.field.Kind() == protoreflect.EnumKind:
			obj[string(f.field.Name())] = encodeJSON(v)
		default:
			if !json.Valid([]byte(v)) {
				return nil, usageErrorf("publish %s: --%s: want %s as in JSON, got %q", ev.name, f.flag, f.field.Name(), v)
			}
			obj[string(f.field.Name())] = json.RawMessage(v)
		}
	}
	return json.Marshal(obj)
}

// flagHint names the flag of the field a validation error is about.
func (ev *publishEvent) flagHint(err error) string {
	field, _, _ := strings.Cut(err.Error(), ":")
	for _, f := range ev.fields {
		if string(f.field.Name()) == field {
			return fmt.Sprintf(" (--%s)", f.flag)
		}
	}
	return ""
}
