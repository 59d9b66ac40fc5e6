package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
	"github.com/activitychat/chat/gen/chat/v1/chatv1connect"
	"github.com/activitychat/chat/test/internal/harness"
)

// groupOf returns the group of an activity.
func groupOf(ctx context.Context, cli chatv1connect.ChatServiceClient, activityID string) (*chatv1.Group, error) {
	res, err := cli.GetGroupByActivityId(ctx, connect.NewRequest(&chatv1.GetGroupByActivityIdRequest{ActivityId: activityID}))
	if err != nil {
		return nil, fmt.Errorf("group of %s: %w", activityID, err)
	}
	return res.Msg.GetGroup(), nil
}

// pageSize is small enough that the listings below go through several pages.
const pageSize = 25

// membersOf lists all members of a group, page by page.
func membersOf(ctx context.Context, cli chatv1connect.ChatServiceClient, groupID string) ([]*chatv1.Member, error) {
	var all []*chatv1.Member
	token := ""
	for page := 0; ; page++ {
		if page > 10000 {
			return nil, errors.New("ListGroupMembers: more than 10000 pages")
		}
		res, err := cli.ListGroupMembers(ctx, connect.NewRequest(&chatv1.ListGroupMembersRequest{
			GroupId: groupID, PageSize: pageSize, PageToken: token,
		}))
		if err != nil {
			return nil, fmt.Errorf("members of %s: %w", groupID, err)
		}
		all = append(all, res.Msg.GetMembers()...)
		if token = res.Msg.GetNextPageToken(); token == "" {
			return all, nil
		}
	}
}

// messagesOf lists all messages of a group, page by page.
func messagesOf(ctx context.Context, cli chatv1connect.ChatServiceClient, groupID string) ([]*chatv1.Message, error) {
	var all []*chatv1.Message
	token := ""
	for page := 0; ; page++ {
		if page > 10000 {
			return nil, errors.New("ListGroupMessages: more than 10000 pages")
		}
		res, err := cli.ListGroupMessages(ctx, connect.NewRequest(&chatv1.ListGroupMessagesRequest{
			GroupId: groupID, PageSize: pageSize, PageToken: token,
		}))
		if err != nil {
			return nil, fmt.Errorf("messages of %s: %w", groupID, err)
		}
		all = append(all, res.Msg.GetMessages()...)
		if token = res.Msg.GetNextPageToken(); token == "" {
			return all, nil
		}
	}
}

// phase is how far a plan has been applied.
type phase int

const (
	phaseCreated phase = iota
	phaseJoined
	phaseLeft
)

// counts are what a check verified, for the scenario notes.
type counts struct {
	Groups, Members, Notices int
}

func (c counts) String() string {
	return fmt.Sprintf("%d groups, %d members, %d notices", c.Groups, c.Members, c.Notices)
}

// expectActivity checks one activity of a plan after phase: the group with
// its title and owner, exactly the expected members with the owner first,
// and exactly one system notice per applied event, to its user.
func expectActivity(ctx context.Context, cli chatv1connect.ChatServiceClient, a planActivity, ph phase) (counts, error) {
	g, err := groupOf(ctx, cli, a.ID)
	if err != nil {
		return counts{}, err
	}
	if g.GetName() != a.Title || g.GetOwnerId() != a.Owner {
		return counts{}, fmt.Errorf("%s: group %q owned by %q, want %q owned by %q", a.ID, g.GetName(), g.GetOwnerId(), a.Title, a.Owner)
	}

	// Expected members and notices per user.
	want := map[string]bool{a.Owner: true}
	notices := map[string]int{a.Owner: 1}
	if ph >= phaseJoined {
		for _, u := range a.Joiners {
			want[u] = true
			notices[u]++
		}
	}
	if ph >= phaseLeft {
		for _, u := range a.Leavers {
			delete(want, u)
			notices[u]++
		}
	}

	members, err := membersOf(ctx, cli, g.GetGroupId())
	if err != nil {
		return counts{}, err
	}
	var got []string
	for _, m := range members {
		got = append(got, m.GetUserId())
	}
	if err := sameSet(got, want); err != nil {
		return counts{}, fmt.Errorf("%s members: %w", a.ID, err)
	}
	if len(members) > 0 && (members[0].GetUserId() != a.Owner || members[0].GetRole() != chatv1.Role_ROLE_OWNER) {
		return counts{}, fmt.Errorf("%s: first member %s (%s), want the owner %s", a.ID, members[0].GetUserId(), members[0].GetRole(), a.Owner)
	}
	if int(g.GetMemberCount()) != len(want) {
		return counts{}, fmt.Errorf("%s: member_count %d, want %d", a.ID, g.GetMemberCount(), len(want))
	}

	msgs, err := messagesOf(ctx, cli, g.GetGroupId())
	if err != nil {
		return counts{}, err
	}
	gotNotices := map[string]int{}
	for _, m := range msgs {
		if !m.GetSystem() {
			return counts{}, fmt.Errorf("%s: message %s is not a system notice", a.ID, m.GetMessageId())
		}
		gotNotices[m.GetRecipientUserId()]++
	}
	wantTotal := 0
	for u, n := range notices {
		wantTotal += n
		if gotNotices[u] != n {
			return counts{}, fmt.Errorf("%s: %d notices to %s, want %d (%d notices in all, want %d)", a.ID, gotNotices[u], u, n, len(msgs), wantTotal)
		}
	}
	if len(msgs) != wantTotal {
		return counts{}, fmt.Errorf("%s: %d notices, want %d", a.ID, len(msgs), wantTotal)
	}
	return counts{Groups: 1, Members: len(members), Notices: len(msgs)}, nil
}

// expectPlan checks every activity of p after phase and adds up the counts.
func expectPlan(ctx context.Context, cli chatv1connect.ChatServiceClient, p plan, ph phase) (counts, error) {
	var total counts
	for _, a := range p.Activities {
		c, err := expectActivity(ctx, cli, a, ph)
		if err != nil {
			return total, err
		}
		total.Groups += c.Groups
		total.Members += c.Members
		total.Notices += c.Notices
	}
	return total, nil
}

// applyPhase publishes the events of one phase of p and waits until the
// chat service shows exactly their effect; it returns the counts checked.
func applyPhase(t *testing.T, ctx context.Context, s *stack, p plan, ph phase, timeout time.Duration) counts {
	t.Helper()
	_, js := s.Connect(t, ctx)
	var evs []event
	switch ph {
	case phaseCreated:
		evs = p.Created()
	case phaseJoined:
		evs = p.Joined()
	case phaseLeft:
		evs = p.Left()
	}
	publishAll(t, ctx, js, evs, 4, nil)
	return expectEventually(t, ctx, s, p, ph, timeout)
}

// expectEventually waits until the chat service shows exactly p after ph.
func expectEventually(t *testing.T, ctx context.Context, s *stack, p plan, ph phase, timeout time.Duration) counts {
	t.Helper()
	cli := s.ChatClient(t, ctx)
	var c counts
	took := harness.Eventually(t, ctx, timeout, fmt.Sprintf("plan applied through phase %d", ph), func(ctx context.Context) error {
		var err error
		c, err = expectPlan(ctx, cli, p, ph)
		return err
	})
	t.Logf("phase %d applied in %s: %s", ph, took.Round(10*time.Millisecond), c)
	return c
}

func sameSet(got []string, want map[string]bool) error {
	seen := map[string]int{}
	var missing, extra, doubled []string
	for _, u := range got {
		seen[u]++
		if seen[u] == 2 {
			doubled = append(doubled, u)
		}
		if !want[u] && seen[u] == 1 {
			extra = append(extra, u)
		}
	}
	for u := range want {
		if seen[u] == 0 {
			missing = append(missing, u)
		}
	}
	if len(missing)+len(extra)+len(doubled) == 0 {
		return nil
	}
	sort.Strings(missing)
	return fmt.Errorf("%d listed, want %d: missing %v, unexpected %v, listed twice %v",
		len(got), len(want), head(missing), head(extra), head(doubled))
}

func head(s []string) []string {
	if len(s) > 5 {
		return append(slices.Clip(s[:5]), fmt.Sprintf("... %d more", len(s)-5))
	}
	return s
}

// dlqCount returns how many dead letters the DLQ stream holds; a DLQ stream
// that does not exist holds none.
func dlqCount(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, dlqStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// consumersIdle reports an error unless every durable consumer of the
// activity stream has delivered and had acknowledged everything.
func consumersIdle(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, activityStream)
	if err != nil {
		return err
	}
	lister := s.ListConsumers(ctx)
	n := 0
	for info := range lister.Info() {
		n++
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("consumer %s: %d pending, %d awaiting ack", info.Name, info.NumPending, info.NumAckPending)
		}
	}
	if err := lister.Err(); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("the activity stream has no consumers")
	}
	return nil
}

// streamMsgs returns how many messages the activity stream holds.
func streamMsgs(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, activityStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// expectQuiet checks the end state of a load scenario: the stream holds
// each published event once, every consumer is idle and the DLQ is empty.
func expectQuiet(t *testing.T, ctx context.Context, js jetstream.JetStream, published int) {
	t.Helper()
	harness.Eventually(t, ctx, 30*time.Second, "consumers idle", func(ctx context.Context) error { return consumersIdle(ctx, js) })
	var n, d uint64
	harness.Eventually(t, ctx, 30*time.Second, "stream and DLQ counted", func(ctx context.Context) error {
		var err error
		if n, err = streamMsgs(ctx, js); err != nil {
			return err
		}
		d, err = dlqCount(ctx, js)
		return err
	})
	if n != uint64(published) {
		t.Errorf("activity stream holds %d messages, want each of the %d published once", n, published)
	}
	if d != 0 {
		t.Errorf("DLQ holds %d messages, want 0", d)
	}
	t.Logf("stream holds %d events, consumers idle, DLQ holds %d", n, d)
}
