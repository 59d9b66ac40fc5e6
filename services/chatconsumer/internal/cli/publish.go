package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
)

// headerFlags collects repeated --header KEY=VALUE flags.
type headerFlags nats.Header

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	nats.Header(h).Add(k, v)
	return nil
}

// publishCmd runs "publish EVENT|raw": it stands in for the Activity
// service, publishing any event of activityv1.ActivityEvents through the
// generic publisher with the event's contract, or, with raw, publishes a
// payload as it is, like a plain NATS client.
func publishCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	events := publishEvents()
	if len(args) == 0 {
		return usageErrorf("publish: missing event: %s or raw", eventNames(events))
	}
	kind, args := args[0], args[1:]
	if isHelp(kind) {
		return &helpError{text: publishUsage(events)}
	}
	var ev *publishEvent
	if kind != "raw" {
		if ev = findEvent(events, kind); ev == nil {
			return usageErrorf("publish: unknown event %q: want %s or raw", kind, eventNames(events))
		}
	}
	fs := flag.NewFlagSet("publish "+kind, flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	var (
		binary, core *bool
		msgID        *string
		header       = headerFlags{}
		fields       map[string]*string
		at           *string
	)
	if ev != nil {
		fields = ev.register(fs)
		at = fs.String("at", "", "the `time` of every time field not given, RFC 3339; default now")
		binary = fs.Bool("binary", false, "encode as binary protobuf instead of JSON")
		msgID = fs.String("msg-id", "", "the Nats-Msg-Id `id`; default derived from the event, so an identical event is stored once")
	} else {
		core = fs.Bool("core", false, "publish with core NATS, without waiting for the stream")
		fs.Var(header, "header", "add a header `KEY=VALUE` (repeatable)")
	}
	pos, err := parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		if ev == nil {
			return commandHelp(fs, rawUsageLine, "Publishes JSON (or standard input with -) to SUBJECT as it is, without\nvalidation, like a plain NATS client.\n")
		}
		return commandHelp(fs, ev.usageLines(), fmt.Sprintf("Publishes %s (%s)\nthrough the generic publisher of its contract, from its fields' flags or\nfrom JSON (- for standard input).\n", ev.info.Subject, ev.info.Name()))
	}
	if err != nil {
		return err
	}

	var publish func(context.Context, *toolConn) (*jetstream.PubAck, string, error)
	if ev != nil {
		if publish, err = ev.publisher(pos, fields, *at, *binary, *msgID, stdin); err != nil {
			return err
		}
	} else {
		if len(pos) < 1 || len(pos) > 2 {
			return usageErrorf("publish raw: want SUBJECT and a JSON payload (or - for standard input)")
		}
		subject, payload := pos[0], "-"
		if len(pos) == 2 {
			payload = pos[1]
		}
		data := []byte(payload)
		if payload == "-" {
			if data, err = io.ReadAll(stdin); err != nil {
				return err
			}
		}
		msg := &nats.Msg{Subject: subject, Data: data}
		if len(header) > 0 {
			msg.Header = nats.Header(header)
		}
		publish = func(ctx context.Context, tc *toolConn) (*jetstream.PubAck, string, error) {
			if *core {
				if err := tc.nc.PublishMsg(msg); err != nil {
					return nil, subject, err
				}
				return nil, subject, tc.nc.FlushWithContext(ctx)
			}
			ack, err := tc.js.PublishMsg(ctx, msg)
			return ack, subject, err
		}
	}

	tc, err := cf.connect()
	if err != nil {
		return err
	}
	defer tc.close()
	if err := tc.ensureStream(ctx); err != nil {
		return err
	}
	ack, subject, err := publish(ctx, tc)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", subject, err)
	}
	switch {
	case ack == nil:
		fmt.Fprintf(stdout, "published to %s (core NATS, not confirmed)\n", termSafe(subject))
	case ack.Duplicate:
		fmt.Fprintf(stdout, "duplicate: %s already holds this event at sequence %d (same Nats-Msg-Id); not stored again\n", termSafe(ack.Stream), ack.Sequence)
	default:
		fmt.Fprintf(stdout, "published to %s: stream %s sequence %d\n", termSafe(subject), termSafe(ack.Stream), ack.Sequence)
	}
	return nil
}

const rawUsageLine = "  chatconsumer publish raw SUBJECT [JSON|-] [--header KEY=VALUE]... [--core]\n"

// publishUsage is the help of publish, with a line for each event.
func publishUsage(events []*publishEvent) string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	for _, ev := range events {
		b.WriteString(ev.usageLines())
	}
	b.WriteString(rawUsageLine)
	fmt.Fprintf(&b, `
EVENT is one of the contract's events (proto/activity/v1/events.proto):
%s, each named by its subject or the subject's last part. They are published
as the Activity service does: validated, encoded (JSON, or protobuf with
--binary) and stored once per Nats-Msg-Id. An event is given by its
fields' flags, or as JSON (- reads standard input). raw publishes a payload
as it is, like "nats pub". Every form takes -f FILE or --nats URL to find
NATS. Run "chatconsumer publish EVENT --help" for its flags.
`, eventNames(events))
	return b.String()
}

// eventNames lists the names of events for messages: "created, joined, left".
func eventNames(events []*publishEvent) string {
	names := make([]string, len(events))
	for i, ev := range events {
		names[i] = ev.name
	}
	return strings.Join(names, ", ")
}

// findEvent returns the event named kind, by short name or subject.
func findEvent(events []*publishEvent, kind string) *publishEvent {
	for _, ev := range events {
		if ev.name == kind || ev.info.Subject == kind {
			return ev
		}
	}
	return nil
}

// eventTime parses --at and the time fields' flags, defaulting to now.
func eventTime(flagName, at string) (time.Time, error) {
	if at == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, usageErrorf("--%s: want RFC 3339 such as 2024-01-01T11:00:00Z, got %q", flagName, at)
	}
	return t, nil
}

// encodeJSON returns v as JSON.
func encodeJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and times always marshal
	}
	return b
}

// eventPublishOptions returns the publish options of --binary and --msg-id.
func eventPublishOptions(binary bool, msgID string) []eventbus.PublishOption {
	var opts []eventbus.PublishOption
	if binary {
		opts = append(opts, eventbus.WithBinary())
	}
	if msgID != "" {
		opts = append(opts, eventbus.WithMsgID(msgID))
	}
	return opts
}

// publishEvents returns the events of activityv1.ActivityEvents that
// publish offers.
func publishEvents() []*publishEvent {
	return newPublishEvents(activityv1.ActivityEvents)
}
