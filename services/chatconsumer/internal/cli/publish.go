package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

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

// publishCmd runs "publish created|joined|left|raw": it stands in for the
// Activity service, publishing through the generated publishers, or, with
// raw, publishes a payload as it is, like a plain NATS client.
func publishCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return usageErrorf("publish: missing event: created, joined, left or raw")
	}
	kind, args := args[0], args[1:]
	if isHelp(kind) {
		return &helpError{text: publishUsage}
	}
	if _, ok := publishHelp[kind]; !ok {
		return usageErrorf("publish: unknown event %q: want created, joined, left or raw", kind)
	}
	fs := flag.NewFlagSet("publish "+kind, flag.ContinueOnError)
	var cf connFlags
	cf.register(fs)
	activity := fs.String("activity", "", "the activity `id`")
	user := fs.String("user", "", "the user `id` (joined, left)")
	creator := fs.String("creator", "", "the creator's user `id` (created)")
	title := fs.String("title", "", "the activity's `title` (created)")
	at := fs.String("at", "", "the event `time`, RFC 3339; default now")
	binary := fs.Bool("binary", false, "encode as binary protobuf instead of JSON")
	msgID := fs.String("msg-id", "", "the Nats-Msg-Id `id`; default derived from the event, so an identical event is stored once")
	core := fs.Bool("core", false, "raw: publish with core NATS, without waiting for the stream")
	header := headerFlags{}
	fs.Var(header, "header", "raw: add a header `KEY=VALUE` (repeatable)")
	pos, err := parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		h := publishHelp[kind]
		return commandHelp(fs, h.lines, h.about, h.flags...)
	}
	if err != nil {
		return err
	}

	var publish func(context.Context, *toolConn) (*jetstream.PubAck, string, error)
	switch kind {
	case "created", "joined", "left":
		if len(pos) > 0 {
			return usageErrorf("publish %s: unexpected argument %q", kind, pos[0])
		}
		ts, err := eventTime(*at)
		if err != nil {
			return err
		}
		var opts []eventbus.PublishOption
		if *binary {
			opts = append(opts, eventbus.WithBinary())
		}
		if *msgID != "" {
			opts = append(opts, eventbus.WithMsgID(*msgID))
		}
		if publish, err = typedPublisher(kind, *activity, *user, *creator, *title, ts, opts); err != nil {
			return err
		}
	case "raw":
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

const publishUsage = `Usage:
  chatconsumer publish created --activity ID --creator ID --title TEXT [--at TIME] [--binary] [--msg-id ID]
  chatconsumer publish joined  --activity ID --user ID [--at TIME] [--binary] [--msg-id ID]
  chatconsumer publish left    --activity ID --user ID [--at TIME] [--binary] [--msg-id ID]
  chatconsumer publish raw SUBJECT [JSON|-] [--header KEY=VALUE]... [--core]

created, joined and left publish through the generated publishers, as the
Activity service does: the event is validated, encoded (JSON, or protobuf
with --binary) and stored once per Nats-Msg-Id. raw publishes a payload as
it is, like "nats pub". Every form takes -f FILE or --nats URL to find NATS.
Run "chatconsumer publish EVENT --help" for its flags.
`

// publishHelp is the help of each event of publish: usage, what it does
// and its flags.
var publishHelp = map[string]struct {
	lines, about string
	flags        []string
}{
	"created": {
		"  chatconsumer publish created --activity ID --creator ID --title TEXT [--at TIME] [--binary] [--msg-id ID]\n",
		"Publishes activity.created through the generated publisher.\n",
		[]string{"activity", "creator", "title", "at", "binary", "msg-id", "f", "nats"},
	},
	"joined": {
		"  chatconsumer publish joined --activity ID --user ID [--at TIME] [--binary] [--msg-id ID]\n",
		"Publishes activity.member.joined through the generated publisher.\n",
		[]string{"activity", "user", "at", "binary", "msg-id", "f", "nats"},
	},
	"left": {
		"  chatconsumer publish left --activity ID --user ID [--at TIME] [--binary] [--msg-id ID]\n",
		"Publishes activity.member.left through the generated publisher.\n",
		[]string{"activity", "user", "at", "binary", "msg-id", "f", "nats"},
	},
	"raw": {
		"  chatconsumer publish raw SUBJECT [JSON|-] [--header KEY=VALUE]... [--core]\n",
		"Publishes JSON (or standard input with -) to SUBJECT as it is, without\nvalidation, like a plain NATS client.\n",
		[]string{"header", "core", "f", "nats"},
	},
}

// typedPublisher checks the flags of one event kind and returns the call of
// its generated publisher.
func typedPublisher(kind, activity, user, creator, title string, ts *timestamppb.Timestamp, opts []eventbus.PublishOption) (func(context.Context, *toolConn) (*jetstream.PubAck, string, error), error) {
	need := func(name, v string) error {
		if v == "" {
			return usageErrorf("publish %s: --%s is required", kind, name)
		}
		return nil
	}
	if err := need("activity", activity); err != nil {
		return nil, err
	}
	switch kind {
	case "created":
		if err := need("creator", creator); err != nil {
			return nil, err
		}
		if err := need("title", title); err != nil {
			return nil, err
		}
		ev := &activityv1.ActivityCreated{ActivityId: activity, CreatorId: creator, Title: title, CreatedAt: ts}
		if err := ev.Validate(); err != nil {
			return nil, usageErrorf("publish created: %v", err)
		}
		return func(ctx context.Context, tc *toolConn) (*jetstream.PubAck, string, error) {
			ack, err := activityv1.PublishActivityCreated(ctx, tc.js, ev, opts...)
			return ack, activityv1.ActivityCreatedSubject, err
		}, nil
	case "joined":
		if err := need("user", user); err != nil {
			return nil, err
		}
		ev := &activityv1.ActivityMemberJoined{ActivityId: activity, UserId: user, JoinedAt: ts}
		if err := ev.Validate(); err != nil {
			return nil, usageErrorf("publish joined: %v", err)
		}
		return func(ctx context.Context, tc *toolConn) (*jetstream.PubAck, string, error) {
			ack, err := activityv1.PublishActivityMemberJoined(ctx, tc.js, ev, opts...)
			return ack, activityv1.ActivityMemberJoinedSubject, err
		}, nil
	default: // left
		if err := need("user", user); err != nil {
			return nil, err
		}
		ev := &activityv1.ActivityMemberLeft{ActivityId: activity, UserId: user, LeftAt: ts}
		if err := ev.Validate(); err != nil {
			return nil, usageErrorf("publish left: %v", err)
		}
		return func(ctx context.Context, tc *toolConn) (*jetstream.PubAck, string, error) {
			ack, err := activityv1.PublishActivityMemberLeft(ctx, tc.js, ev, opts...)
			return ack, activityv1.ActivityMemberLeftSubject, err
		}, nil
	}
}

// eventTime parses --at, defaulting to now.
func eventTime(at string) (*timestamppb.Timestamp, error) {
	if at == "" {
		return timestamppb.Now(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return nil, usageErrorf("--at: want RFC 3339 such as 2024-01-01T11:00:00Z, got %q", at)
	}
	return timestamppb.New(t), nil
}
