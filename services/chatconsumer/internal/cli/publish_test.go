package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	"github.com/activitychat/chat/services/chatconsumer/internal/cli"
	"github.com/activitychat/chat/services/chatconsumer/internal/testenv"
)

// TestPublishFromRegistry publishes events the way the CLI derives them
// from the generated registry: by flags, by short name and by subject, as
// JSON and from standard input, and reads each back from the stream.
func TestPublishFromRegistry(t *testing.T) {
	n := testenv.StartNATS(t)
	_, js := testenv.Connect(t, n.ClientURL())
	nats := []string{"--nats", n.ClientURL()}

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  proto.Message
	}{
		{
			name: "flags",
			args: []string{"publish", "created", "--activity", "act_f", "--creator", "u1", "--title", "By flags", "--created-at", "2024-01-01T10:00:00Z", "--binary"},
			want: &activityv1.ActivityCreated{ActivityId: "act_f", CreatorId: "u1", Title: "By flags", CreatedAt: ts(t, "2024-01-01T10:00:00Z")},
		},
		{
			name: "JSON by subject",
			args: []string{"publish", "activity.member.joined", `{"activity_id": "act_j", "user_id": "u2", "joined_at": "2024-01-01T11:00:00Z"}`},
			want: &activityv1.ActivityMemberJoined{ActivityId: "act_j", UserId: "u2", JoinedAt: ts(t, "2024-01-01T11:00:00Z")},
		},
		{
			name:  "standard input",
			stdin: `{"activity_id": "act_l", "user_id": "u3", "left_at": "2024-01-01T12:00:00Z"}`,
			args:  []string{"publish", "left", "-"},
			want:  &activityv1.ActivityMemberLeft{ActivityId: "act_l", UserId: "u3", LeftAt: ts(t, "2024-01-01T12:00:00Z")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.stdin, append(tc.args, nats...)...)
			if r.code != cli.ExitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			ev, _ := activityv1.ActivityEvents.Lookup(eventSubject(tc.want))
			if !strings.Contains(r.stdout, "published to "+ev.Subject+": stream ACTIVITY") {
				t.Errorf("stdout = %q", r.stdout)
			}
			s, err := js.Stream(context.Background(), ev.Stream)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := s.GetLastMsgForSubject(context.Background(), ev.Subject)
			if err != nil {
				t.Fatal(err)
			}
			got := ev.New()
			if err := eventbus.Decode(raw.Header.Get(eventbus.HeaderContentType), raw.Data, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tc.want) {
				t.Errorf("stored %v, want %v", got, tc.want)
			}
		})
	}
}

// eventSubject returns the subject of the registered event of m's type.
func eventSubject(m proto.Message) string {
	for _, ev := range activityv1.ActivityEvents {
		if ev.Name() == m.ProtoReflect().Descriptor().FullName() {
			return ev.Subject
		}
	}
	return ""
}

// ts parses an RFC 3339 time.
func ts(t *testing.T, s string) *timestamppb.Timestamp {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return timestamppb.New(v)
}
