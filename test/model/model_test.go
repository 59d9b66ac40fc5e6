// Package model runs a model-based, randomized test of the whole chat side:
// nats-server, the chat service and the chat consumer run as host
// processes, built from this repository, and a generated history of
// activities, joins and leaves goes in through NATS in shuffled order with
// duplicates while the consumer is SIGKILLed and the chat service stopped.
// Once the system is quiet, every activity's group is checked against a
// model of what the history decides.
//
//	go test ./test/model/                          # CI size
//	go test ./test/model/ -model.activities=2000   # larger
//
// CHAT_MODEL_ACTIVITIES sets the size too, and CHAT_TEST_POSTGRES_DSN adds
// the run on PostgreSQL.
package model

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/test/internal/harness"
	"github.com/activitychat/chat/test/internal/hostproc"
	"github.com/activitychat/chat/test/internal/pgtest"
)

var (
	activities = flag.Int("model.activities", hostproc.EnvInt("CHAT_MODEL_ACTIVITIES", 150), "how many activities the history has")
	seedFlag   = flag.Uint64("model.seed", 0, "the history's random seed; 0 picks one")
)

// Notice templates: each names its user, so that a notice tells which
// change it announces.
const (
	createdNotice = "C {title}"
	joinedNotice  = "J {user_id}"
	leftNotice    = "L {user_id}"
)

func TestModel(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		run(t, "sqlite", filepath.Join(t.TempDir(), "chat.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		run(t, "postgres", pgtest.Schema(t))
	})
}

// memberEvent is one join or leave of the history.
type memberEvent struct {
	activity string
	user     string
	leave    bool
	at       time.Time
}

// beats reports whether e decides over d: later, or at the same time a
// leave over a join. It is the rule the proto documents.
func (e memberEvent) beats(d memberEvent) bool {
	if !e.at.Equal(d.at) {
		return e.at.After(d.at)
	}
	return e.leave && !d.leave
}

// activity is one activity of the history.
type activity struct {
	id, creator, title string
	created            time.Time
	late               bool // its created event goes out after its members' events are handled
	events             []memberEvent
}

// members returns the users the history makes members, sorted.
func (a *activity) members() []string {
	decided := map[string]memberEvent{}
	for _, e := range a.events {
		if d, ok := decided[e.user]; !ok || e.beats(d) {
			decided[e.user] = e
		}
	}
	var out []string
	for user, e := range decided {
		if !e.leave {
			out = append(out, user)
		}
	}
	slices.Sort(out)
	return out
}

// history generates n activities. Users join, leave and rejoin within a
// few seconds of each other at second resolution, so ties are common. A
// fifth of the activities are late: their members' events come hours of
// event time, and many seconds of wall time, before their created event.
func history(rng *rand.Rand, n int) []*activity {
	t0 := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	out := make([]*activity, n)
	for i := range out {
		a := &activity{
			id:      fmt.Sprintf("act_%04d", i),
			creator: fmt.Sprintf("creator_%d", i),
			title:   fmt.Sprintf("Activity %d", i),
			created: t0.Add(time.Duration(rng.IntN(3600)) * time.Second),
			late:    rng.IntN(5) == 0,
		}
		users := 1 + rng.IntN(6)
		for u := range users {
			user := fmt.Sprintf("user_%d", u)
			start := a.created.Add(time.Duration(rng.IntN(60)) * time.Second)
			if a.late {
				start = a.created.Add(-time.Duration(1+rng.IntN(3)) * time.Hour)
			}
			at := start
			for range 1 + rng.IntN(5) {
				e := memberEvent{activity: a.id, user: user, leave: rng.IntN(2) == 0, at: at}
				a.events = append(a.events, e)
				switch rng.IntN(3) {
				case 0: // a tie: the other kind at the same second
					a.events = append(a.events, memberEvent{activity: a.id, user: user, leave: !e.leave, at: at})
				case 1:
					at = at.Add(time.Duration(rng.IntN(3)) * time.Second)
				}
			}
		}
		out[i] = a
	}
	return out
}

func startStack(t *testing.T, driver, dsn string) *hostproc.Stack {
	s := hostproc.StartStack(t, hostproc.StackConfig{
		Driver: driver, DSN: dsn,
		Messaging: map[string]any{
			"Concurrency": 32, "AckWait": "5s",
			"Retry": map[string]any{"MaxRetries": 5, "InitialInterval": "100ms", "MaxInterval": "1s", "Multiplier": 2, "MaxHold": "10s"},
		},
		Notices: map[string]string{"Created": createdNotice, "Joined": joinedNotice, "Left": leftNotice},
	})
	s.StartConsumer(t)
	return s
}

// published is one message to publish: an event and its options.
type published struct {
	send func(ctx context.Context, js jetstream.JetStream) error
	what string
}

func createdMsg(a *activity) published {
	ev := &activityv1.ActivityCreated{ActivityId: a.id, CreatorId: a.creator, Title: a.title, CreatedAt: timestamppb.New(a.created)}
	return published{what: "created " + a.id, send: func(ctx context.Context, js jetstream.JetStream) error {
		_, err := activityv1.PublishActivityCreated(ctx, js, ev)
		return err
	}}
}

func memberMsg(e memberEvent, opts ...eventbus.PublishOption) published {
	return published{what: fmt.Sprintf("%s %s leave=%v %s", e.activity, e.user, e.leave, e.at.Format(time.TimeOnly)),
		send: func(ctx context.Context, js jetstream.JetStream) error {
			var err error
			if e.leave {
				_, err = activityv1.PublishActivityMemberLeft(ctx, js, &activityv1.ActivityMemberLeft{ActivityId: e.activity, UserId: e.user, LeftAt: timestamppb.New(e.at)}, opts...)
			} else {
				_, err = activityv1.PublishActivityMemberJoined(ctx, js, &activityv1.ActivityMemberJoined{ActivityId: e.activity, UserId: e.user, JoinedAt: timestamppb.New(e.at)}, opts...)
			}
			return err
		}}
}

func publishAll(t *testing.T, js jetstream.JetStream, msgs []published) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, m := range msgs {
		if err := m.send(ctx, js); err != nil {
			t.Fatalf("publish %s: %v", m.what, err)
		}
	}
}

func run(t *testing.T, driver, dsn string) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-model.seed=%d repeats this history), %d activities", seed, seed, *activities)
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))
	acts := history(rng, *activities)

	// The messages of the first phase: every join and leave, the created
	// events of the activities that are not late, and duplicates: some
	// republished as they are (JetStream drops them by Nats-Msg-Id), some
	// under an id of their own, which the consumer handles twice.
	var first, late []published
	events := 0
	for _, a := range acts {
		if a.late {
			late = append(late, createdMsg(a))
		} else {
			first = append(first, createdMsg(a))
		}
		for _, e := range a.events {
			events++
			first = append(first, memberMsg(e))
			switch rng.IntN(8) {
			case 0:
				first = append(first, memberMsg(e))
			case 1:
				first = append(first, memberMsg(e, eventbus.WithMsgID(fmt.Sprintf("dup-%d-%d", seed, len(first)))))
			}
		}
	}
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	t.Logf("%d member events, %d messages in the first phase, %d late created events", events, len(first), len(late))

	s := startStack(t, driver, dsn)
	js := s.JetStream(t)

	// Phase one, with the consumer killed and the chat service stopped on
	// the way.
	third := len(first) / 3
	began := time.Now()
	publishAll(t, js, first[:third])
	s.Consumer.Kill()
	publishAll(t, js, first[third:2*third])
	s.Consumer.Start()
	hostproc.WaitHTTP200(t, s.ConsumerOps+"/readyz", 30*time.Second)
	s.Chat.Stop()
	publishAll(t, js, first[2*third:])
	hostproc.WaitNotReady(t, s.ConsumerOps+"/readyz") // the consumer holds while the chat service is down
	s.Chat.Start()
	hostproc.WaitHTTP200(t, s.ChatURL+"/readyz", 30*time.Second)
	s.Consumer.Kill()
	s.Consumer.Start()
	waitQuiet(t, js)

	// Phase two: the late created events, many seconds after their
	// members' events were handled.
	t.Logf("the late created events go out %s after the first member events", time.Since(began).Round(time.Second))
	publishAll(t, js, late)
	waitQuiet(t, js)

	client := chatv1connect.NewChatServiceClient(http.DefaultClient, s.ChatURL)
	harness.Eventually(t, context.Background(), 30*time.Second, "the groups match the model", func(context.Context) error {
		return checkAll(client, acts, false)
	})
	if err := checkAll(client, acts, true); err != nil {
		t.Error(err)
	}
	if n := deadLetters(t, js); n != 0 {
		t.Errorf("%d events dead-lettered, want none: every event of the history is valid", n)
	}
}

// waitQuiet waits until every durable consumer of the activity stream has
// delivered and seen acknowledged every message.
func waitQuiet(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	harness.Eventually(t, context.Background(), 2*time.Minute, "the system is quiet", func(context.Context) error {
		return consumers(js, func(info *jetstream.ConsumerInfo) error {
			if info.NumPending != 0 || info.NumAckPending != 0 {
				return fmt.Errorf("consumer %s: %d pending, %d awaiting ack", info.Name, info.NumPending, info.NumAckPending)
			}
			return nil
		})
	})
}

func consumers(js jetstream.JetStream, check func(*jetstream.ConsumerInfo) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "ACTIVITY")
	if err != nil {
		return err
	}
	lister := st.ListConsumers(ctx)
	n := 0
	for info := range lister.Info() {
		n++
		if err := check(info); err != nil {
			return err
		}
	}
	if err := lister.Err(); err != nil {
		return err
	}
	if n < 3 {
		return fmt.Errorf("%d consumers on the stream, want 3", n)
	}
	return nil
}

func deadLetters(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "ACTIVITY_DLQ")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// checkAll checks every activity against the model and returns the
// problems found, all of them when all is true, else the first.
func checkAll(client chatv1connect.ChatServiceClient, acts []*activity, all bool) error {
	var errs []error
	for _, a := range acts {
		if err := check(client, a); err != nil {
			if !all {
				return err
			}
			errs = append(errs, err)
			if len(errs) == 20 {
				errs = append(errs, errors.New("…"))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// check checks one activity: one group, the creator as owner, the members
// of the model, and notices that follow the changes: for each user they
// alternate joined and left, starting with joined, and end with joined
// exactly when the user is a member; the creator has one created notice.
func check(client chatv1connect.ChatServiceClient, a *activity) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := client.GetGroupByActivityId(ctx, connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{ActivityId: a.id}))
	if err != nil {
		return fmt.Errorf("%s: group: %w", a.id, err)
	}
	g := res.Msg.GetGroup()
	if g.GetOwnerId() != a.creator || g.GetName() != a.title {
		return fmt.Errorf("%s: group owner %q name %q, want %q %q", a.id, g.GetOwnerId(), g.GetName(), a.creator, a.title)
	}
	var members []string
	token := ""
	for {
		page, err := client.ListGroupMembers(ctx, connect.NewRequest(&chatv1.ListGroupMembersRequest{GroupId: g.GetGroupId(), PageSize: 1000, PageToken: token}))
		if err != nil {
			return fmt.Errorf("%s: members: %w", a.id, err)
		}
		for i, m := range page.Msg.GetMembers() {
			if (m.GetRole() == chatv1.Role_ROLE_OWNER) != (token == "" && i == 0) || (m.GetRole() == chatv1.Role_ROLE_OWNER) != (m.GetUserId() == a.creator) {
				return fmt.Errorf("%s: member %s has role %v", a.id, m.GetUserId(), m.GetRole())
			}
			if m.GetUserId() != a.creator {
				members = append(members, m.GetUserId())
			}
		}
		if token = page.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	slices.Sort(members)
	want := a.members()
	if !slices.Equal(members, want) {
		return fmt.Errorf("%s: members %v, model %v (events %v)", a.id, members, want, describe(a.events))
	}
	notices := map[string][]string{}
	token = ""
	for {
		page, err := client.ListGroupMessages(ctx, connect.NewRequest(&chatv1.ListGroupMessagesRequest{GroupId: g.GetGroupId(), PageSize: 1000, PageToken: token}))
		if err != nil {
			return fmt.Errorf("%s: messages: %w", a.id, err)
		}
		for _, m := range page.Msg.GetMessages() {
			notices[m.GetRecipientUserId()] = append(notices[m.GetRecipientUserId()], m.GetText())
		}
		if token = page.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	if got := notices[a.creator]; !slices.Equal(got, []string{"C " + a.title}) {
		return fmt.Errorf("%s: the creator's notices are %q, want one created notice", a.id, got)
	}
	delete(notices, a.creator)
	for user, texts := range notices {
		for i, text := range texts {
			want := "J " + user
			if i%2 == 1 {
				want = "L " + user
			}
			if text != want {
				return fmt.Errorf("%s: %s's notices %q do not alternate from a join (events %v)", a.id, user, texts, describe(a.events))
			}
		}
		if member := slices.Contains(members, user); member != (len(texts)%2 == 1) {
			return fmt.Errorf("%s: %s member=%v but notices %q (events %v)", a.id, user, member, texts, describe(a.events))
		}
	}
	for _, user := range members {
		if len(notices[user]) == 0 {
			return fmt.Errorf("%s: member %s got no join notice", a.id, user)
		}
	}
	return nil
}

func describe(events []memberEvent) string {
	sorted := slices.Clone(events)
	slices.SortFunc(sorted, func(a, b memberEvent) int {
		return cmp.Or(strings.Compare(a.user, b.user), a.at.Compare(b.at))
	})
	var b strings.Builder
	for _, e := range sorted {
		kind := "join"
		if e.leave {
			kind = "leave"
		}
		fmt.Fprintf(&b, " %s:%s@%s", e.user, kind, e.at.Format(time.TimeOnly))
	}
	return b.String()
}
