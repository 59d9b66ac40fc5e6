package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/services/chatconsumer/internal/handlers"
	"github.com/activitychat/chat/services/chatconsumer/internal/testenv"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name               string
		err                error
		notFoundMeansEarly bool
		want               error // the eventbus class, or nil for a plain error
	}{
		{"unavailable", connect.NewError(connect.CodeUnavailable, errors.New("down")), false, eventbus.ErrUnavailable},
		{"deadline exceeded", connect.NewError(connect.CodeDeadlineExceeded, errors.New("slow")), false, eventbus.ErrUnavailable},
		{"resource exhausted", connect.NewError(connect.CodeResourceExhausted, errors.New("busy")), false, eventbus.ErrUnavailable},
		{"unauthenticated", connect.NewError(connect.CodeUnauthenticated, errors.New("token")), false, eventbus.ErrUnavailable},
		{"permission denied", connect.NewError(connect.CodePermissionDenied, errors.New("token")), false, eventbus.ErrUnavailable},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false, eventbus.ErrUnavailable},
		{"invalid argument", connect.NewError(connect.CodeInvalidArgument, errors.New("user_id")), false, eventbus.ErrPermanent},
		{"failed precondition", connect.NewError(connect.CodeFailedPrecondition, errors.New("owner")), true, eventbus.ErrPermanent},
		{"group not found yet", connect.NewError(connect.CodeNotFound, errors.New("group")), true, eventbus.ErrNotReady},
		{"not found elsewhere", connect.NewError(connect.CodeNotFound, errors.New("group")), false, nil},
		{"internal", connect.NewError(connect.CodeInternal, errors.New("bug")), true, nil},
		{"unknown", errors.New("something"), false, nil},
	}
	classes := []error{eventbus.ErrUnavailable, eventbus.ErrPermanent, eventbus.ErrNotReady}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := handlers.Classify("AddGroupMember", tt.err, tt.notFoundMeansEarly)
			if !errors.Is(got, tt.err) {
				t.Errorf("Classify(%v) = %v, does not wrap the cause", tt.err, got)
			}
			if !strings.HasPrefix(got.Error(), "chat AddGroupMember: ") {
				t.Errorf("Classify(%v) = %q, want the call named", tt.err, got)
			}
			for _, c := range classes {
				if want := c == tt.want; errors.Is(got, c) != want {
					t.Errorf("errors.Is(Classify(%v), %v) = %v, want %v", tt.err, c, !want, want)
				}
			}
		})
	}
	if handlers.Classify("X", nil, true) != nil {
		t.Error("Classify(nil) != nil")
	}
}

func TestNoticeKeys(t *testing.T) {
	ts := timestamppb.New(time.Date(2024, 1, 1, 11, 0, 0, 0, time.FixedZone("CST", 8*3600)))
	tests := []struct {
		name, got, want string
	}{
		{"created", handlers.CreatedNoticeKey(&activityv1.ActivityCreated{ActivityId: "act_1", CreatorId: "u", CreatedAt: ts}), "activity.created:act_1"},
		{"joined", handlers.JoinedNoticeKey(&activityv1.ActivityMemberJoined{ActivityId: "act_1", UserId: "u2", JoinedAt: ts}), "activity.member.joined:act_1:u2:2024-01-01T03:00:00Z"},
		{"left", handlers.LeftNoticeKey(&activityv1.ActivityMemberLeft{ActivityId: "act_1", UserId: "u2", LeftAt: ts}), "activity.member.left:act_1:u2:2024-01-01T03:00:00Z"},
		{"longest fits", fmt.Sprint(len(handlers.JoinedNoticeKey(&activityv1.ActivityMemberJoined{
			ActivityId: strings.Repeat("a", 64), UserId: strings.Repeat("u", 64),
			JoinedAt: timestamppb.New(time.Date(2024, 1, 1, 11, 0, 0, 123456789, time.UTC)),
		})) <= 200), "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// recorder is a chat service that records the headers of the calls it
// gets and answers CreateGroup and SendSystemMessage.
type recorder struct {
	chatv1connect.UnimplementedChatServiceHandler
	headers chan http.Header
	delay   time.Duration
}

func (r *recorder) CreateGroup(ctx context.Context, req *connect.Request[chatv1.CreateGroupRequest]) (*connect.Response[chatv1.CreateGroupResponse], error) {
	r.headers <- req.Header().Clone()
	select {
	case <-time.After(r.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return connect.NewResponse(&chatv1.CreateGroupResponse{Group: &chatv1.Group{GroupId: "g1", Name: req.Msg.GetName()}, Created: true}), nil
}

func (r *recorder) SendSystemMessage(_ context.Context, req *connect.Request[chatv1.SendSystemMessageRequest]) (*connect.Response[chatv1.SendSystemMessageResponse], error) {
	r.headers <- req.Header().Clone()
	return connect.NewResponse(&chatv1.SendSystemMessageResponse{Created: true}), nil
}

func startRecorder(t *testing.T, delay time.Duration) (*recorder, string) {
	t.Helper()
	rec := &recorder{headers: make(chan http.Header, 10), delay: delay}
	mux := http.NewServeMux()
	mux.Handle(chatv1connect.NewChatServiceHandler(rec))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return rec, ts.URL
}

// TestClientPropagates checks that every call carries the bearer token and
// the traceparent of the event being handled.
func TestClientPropagates(t *testing.T) {
	rec, url := startRecorder(t, 0)
	client := handlers.NewClient(handlers.ClientConfig{Endpoint: url, Token: "s3cret", Timeout: time.Second})
	h := handlers.New(client, handlers.Notices{Created: "{title} by {user_id}", Joined: "j", Left: "l"}, nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := eventbus.ContextWithTraceparent(context.Background(), tp)
	err := h.ActivityCreated(ctx, &activityv1.ActivityCreated{ActivityId: "act_1", CreatorId: "u1", Title: "Hike", CreatedAt: timestamppb.Now()}, eventbus.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range []string{"CreateGroup", "SendSystemMessage"} {
		t.Run(call, func(t *testing.T) {
			h := <-rec.headers
			if got := h.Get("Authorization"); got != "Bearer s3cret" {
				t.Errorf("Authorization = %q", got)
			}
			if got := h.Get("traceparent"); got != tp {
				t.Errorf("traceparent = %q, want %q", got, tp)
			}
		})
	}
}

// TestClientTimeout checks that a call slower than the timeout fails as an
// outage (deadline exceeded), not as a bad event.
func TestClientTimeout(t *testing.T) {
	_, url := startRecorder(t, 2*time.Second)
	client := handlers.NewClient(handlers.ClientConfig{Endpoint: url, Timeout: 100 * time.Millisecond})
	h := handlers.New(client, handlers.Notices{Created: "c", Joined: "j", Left: "l"}, nil)
	start := time.Now()
	err := h.ActivityCreated(context.Background(), &activityv1.ActivityCreated{ActivityId: "act_1", CreatorId: "u1", Title: "Hike", CreatedAt: timestamppb.Now()}, eventbus.Meta{})
	if !errors.Is(err, eventbus.ErrUnavailable) {
		t.Errorf("err = %v, want an Unavailable error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("call took %s, want it cut at the 100ms timeout", d)
	}
}

// calls counts the chat calls made through it, by procedure.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n[path.Base(r.URL.Path)]++
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (c *calls) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// TestMembershipOneCall runs the handlers against the real chat service: a
// join or leave is one call, whether or not the group exists yet; a join
// before its activity's created event is applied with its notice when the
// group is created; a leave of a user never a member sends no notice.
func TestMembershipOneCall(t *testing.T) {
	c := &calls{n: map[string]int{}}
	chat := testenv.StartChatWrapped(t, c.wrap)
	h := handlers.New(handlers.NewClient(handlers.ClientConfig{Endpoint: chat.URL(), Token: testenv.Token, Timeout: 5 * time.Second}),
		handlers.Notices{Created: "created {title}", Joined: "{user_id} joined {title}", Left: "{user_id} left {group_name}"}, nil)
	ctx := context.Background()
	t0 := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	join := func(user string, at time.Time) error {
		return h.ActivityMemberJoined(ctx, &activityv1.ActivityMemberJoined{ActivityId: "act_1", UserId: user, JoinedAt: timestamppb.New(at)}, eventbus.Meta{})
	}
	leave := func(user string, at time.Time) error {
		return h.ActivityMemberLeft(ctx, &activityv1.ActivityMemberLeft{ActivityId: "act_1", UserId: user, LeftAt: timestamppb.New(at)}, eventbus.Meta{})
	}
	// An hour before the activity exists.
	if err := join("u1", t0.Add(-time.Hour)); err != nil {
		t.Fatalf("join before the group = %v, want it kept", err)
	}
	if err := leave("u2", t0.Add(-time.Hour)); err != nil {
		t.Fatalf("leave before the group = %v, want it kept", err)
	}
	if got := c.take(); got["AddGroupMember"] != 1 || got["RemoveGroupMember"] != 1 || len(got) != 2 {
		t.Errorf("calls before the group = %v, want one each", got)
	}
	if err := h.ActivityCreated(ctx, &activityv1.ActivityCreated{ActivityId: "act_1", CreatorId: "owner", Title: "Hike", CreatedAt: timestamppb.New(t0)}, eventbus.Meta{}); err != nil {
		t.Fatal(err)
	}
	if err := leave("u3", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := leave("u1", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := c.take(); got["RemoveGroupMember"] != 2 || got["SendSystemMessage"] != 1 || len(got) != 3 {
		t.Errorf("calls after the group = %v, want CreateGroup, SendSystemMessage and one per leave", got)
	}
	if got := chat.Members("act_1"); !slices.Equal(got, []string{"owner"}) {
		t.Errorf("members = %v, want [owner]", got)
	}
	var texts []string
	for _, m := range chat.Messages("act_1") {
		texts = append(texts, m.GetRecipientUserId()+": "+m.GetText())
	}
	want := []string{"u1: u1 joined Hike", "owner: created Hike", "u1: u1 left Hike"}
	if !slices.Equal(texts, want) {
		t.Errorf("notices = %q, want %q", texts, want)
	}
}
