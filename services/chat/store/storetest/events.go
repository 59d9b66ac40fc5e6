package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/activitychat/chat/services/chat/store"
)

// change is one join or leave of a user, addressed by activity, with a
// notice keyed by the event.
type change struct {
	user   string
	leave  bool
	minute int
}

func (c change) String() string {
	if c.leave {
		return fmt.Sprintf("%s:leave@%d", c.user, c.minute)
	}
	return fmt.Sprintf("%s:join@%d", c.user, c.minute)
}

// key is the notice's idempotency key, one per event.
func (c change) key() string { return "n:" + c.String() }

// send applies c to the activity's group, by activity id.
func send(t *testing.T, s store.Store, activityID string, c change) store.MembershipChange {
	t.Helper()
	text := "joined {group_name}"
	if c.leave {
		text = "left {group_name}"
	}
	e := store.MembershipEvent{
		ActivityID: activityID, UserID: c.user, EventTime: at(c.minute),
		Notice: store.Notice{Text: text, IdempotencyKey: c.key()},
	}
	var (
		res store.MembershipChange
		err error
	)
	if c.leave {
		res, err = s.RemoveMember(context.Background(), e)
	} else {
		res, err = s.AddMember(context.Background(), e)
	}
	if err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	return res
}

// allMessages lists every message of a group, following the page tokens.
func allMessages(t *testing.T, s store.Store, groupID string) []store.Message {
	t.Helper()
	var out []store.Message
	token := ""
	for {
		msgs, next, err := s.ListMessages(context.Background(), groupID, store.Page{Size: MaxPage, Token: token})
		if err != nil {
			t.Fatalf("ListMessages: %v", err)
		}
		out = append(out, msgs...)
		if next == "" {
			return out
		}
		token = next
	}
}

// MaxPage is the page size the helpers list with.
const MaxPage = store.MaxPageSize

func testPendingChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	const act = "act_pending"
	for _, c := range []change{
		{"user_a", false, 1},
		{"user_b", true, 2},  // a stranger's leave: a tombstone
		{"user_c", false, 3}, // a join and a leave at one time: the leave wins
		{"user_c", true, 3},
		{"user_d", false, 5}, // a join, then an older leave: the join stays
		{"user_d", true, 4},
		{"owner_1", true, 1}, // about the owner: dropped at creation
	} {
		if got := send(t, s, act, c); got != (store.MembershipChange{Pending: true}) {
			t.Errorf("%v before the group = %+v, want pending", c, got)
		}
	}
	g, created, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: act, OwnerID: "owner_1", Name: "Hike", OwnerJoinedAt: at(10)})
	if err != nil || !created {
		t.Fatalf("CreateGroup = %v, %v", created, err)
	}
	if g.MemberCount != 3 {
		t.Errorf("created group's member count = %d, want 3", g.MemberCount)
	}
	if got, want := memberIDs(t, s, g.ID), []string{"owner_1", "user_a", "user_d"}; !slices.Equal(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	msgs := allMessages(t, s, g.ID)
	var got []string
	for _, m := range msgs {
		got = append(got, m.RecipientUserID+": "+m.Text)
	}
	if want := []string{"user_a: joined Hike", "user_d: joined Hike"}; !slices.Equal(got, want) {
		t.Errorf("notices = %q, want %q, in event-time order", got, want)
	}
	// The applied pending changes decide as if they had come after the
	// group: an older join of the stranger is ignored, a later leave applies.
	if c := send(t, s, act, change{"user_b", false, 1}); c.Applied || c.IsMember || c.Pending {
		t.Errorf("join older than the pending leave = %+v, want ignored", c)
	}
	if c := send(t, s, act, change{"user_a", true, 6}); !c.Applied || !c.NoticeStored {
		t.Errorf("leave after the pending join = %+v, want applied with its notice", c)
	}
	// A repeated CreateGroup applies nothing again.
	again, created, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: act, OwnerID: "owner_1", Name: "Hike"})
	if err != nil || created || again.ID != g.ID || again.MemberCount != 2 {
		t.Errorf("repeated CreateGroup = %+v, %v, %v", again, created, err)
	}
	if n := len(allMessages(t, s, g.ID)); n != 3 {
		t.Errorf("%d messages, want 3", n)
	}
	// A group named by id still has to exist.
	if _, err := s.AddMember(ctx, store.MembershipEvent{GroupID: "grp_missing", UserID: "u", EventTime: at(1)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AddMember on a missing group id: err = %v, want ErrNotFound", err)
	}
}

// checkNotices checks that the notices of each user alternate, joined then
// left, as the membership changes they announce must, end with a join
// exactly for members, and have distinct keys of the user's events.
func checkNotices(t *testing.T, msgs []store.Message, members []string, label string) {
	t.Helper()
	byUser := map[string][]string{}
	for _, m := range msgs {
		byUser[m.RecipientUserID] = append(byUser[m.RecipientUserID], m.Text)
	}
	for user, texts := range byUser {
		for i, text := range texts {
			want := "joined"
			if i%2 == 1 {
				want = "left"
			}
			if !strings.HasPrefix(text, want) {
				t.Errorf("%s: notices of %s = %q: not alternating from a join", label, user, texts)
				break
			}
		}
		if member := slices.Contains(members, user); member != (len(texts)%2 == 1) {
			t.Errorf("%s: %s member = %v but notices %q", label, user, member, texts)
		}
	}
	for _, user := range members {
		if user != "owner_1" && len(byUser[user]) == 0 {
			t.Errorf("%s: member %s has no join notice", label, user)
		}
	}
}

func testPendingChangesConverge(t *testing.T, s store.Store) {
	events := []change{{"user_2", false, 1}, {"user_2", true, 2}, {"user_2", false, 2}, {"user_2", false, 3}}
	n := 0
	for _, order := range indexPermutations(len(events)) {
		for createAt := 0; createAt <= len(order); createAt++ {
			n++
			act := fmt.Sprintf("act_pc%d", n)
			var g store.Group
			for i := 0; i <= len(order); i++ {
				if i == createAt {
					g = newGroup(t, s, act)
				}
				if i < len(order) {
					send(t, s, act, events[order[i]])
				}
			}
			label := fmt.Sprintf("order %v, created after %d", order, createAt)
			members := memberIDs(t, s, g.ID)
			if !slices.Equal(members, []string{"owner_1", "user_2"}) {
				t.Errorf("%s: members = %v, want user_2 in", label, members)
			}
			checkNotices(t, allMessages(t, s, g.ID), members, label)
		}
	}
}

// indexPermutations returns every order of 0..n-1.
func indexPermutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range indexPermutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

func testPendingChangeRacesCreateGroup(t *testing.T, s store.Store) {
	ctx := context.Background()
	for round := range 5 {
		act := fmt.Sprintf("act_prace%d", round)
		var wg sync.WaitGroup
		errs := make([]error, Concurrency)
		for i := range Concurrency {
			wg.Go(func() {
				_, errs[i] = s.AddMember(ctx, store.MembershipEvent{
					ActivityID: act, UserID: fmt.Sprintf("user_%02d", i), EventTime: at(i),
					Notice: store.Notice{Text: "joined", IdempotencyKey: fmt.Sprint(i)},
				})
			})
			if i == Concurrency/2 {
				wg.Go(func() {
					if _, _, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: act, OwnerID: "owner_1", Name: "Race"}); err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d caller %d: %v", round, i, err)
			}
		}
		g, err := s.GroupByActivityID(ctx, act)
		if err != nil {
			t.Fatal(err)
		}
		if got := memberIDs(t, s, g.ID); len(got) != Concurrency+1 {
			t.Errorf("round %d: %d members, want %d: a change racing CreateGroup was lost", round, len(got), Concurrency+1)
		}
		if msgs := allMessages(t, s, g.ID); len(msgs) != Concurrency {
			t.Errorf("round %d: %d notices, want %d", round, len(msgs), Concurrency)
		}
	}
}

func testNotices(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_notices")
	ev := func(user string, minute int, key string) store.MembershipEvent {
		return store.MembershipEvent{GroupID: g.ID, UserID: user, EventTime: at(minute),
			Notice: store.Notice{Text: "hello {group_name}", IdempotencyKey: key}}
	}
	steps := []struct {
		name        string
		leave       bool
		e           store.MembershipEvent
		wantApplied bool
		wantNotice  bool
	}{
		{"join", false, ev("user_2", 1, "j1"), true, true},
		{"repeated join", false, ev("user_2", 1, "j1"), false, false},
		{"later join while member", false, ev("user_2", 2, "j2"), false, false},
		{"leave of a user never a member", true, ev("user_3", 1, "l3"), false, false},
		{"leave", true, ev("user_2", 3, "l2"), true, true},
		{"older join", false, ev("user_2", 1, "j1"), false, false},
		{"join of the owner", false, ev("owner_1", 5, "jo"), false, false},
		{"join without a notice", false, store.MembershipEvent{GroupID: g.ID, UserID: "user_4", EventTime: at(1)}, true, false},
		{"join with a used key", false, ev("user_5", 1, "j1"), true, false},
	}
	for _, st := range steps {
		var c store.MembershipChange
		var err error
		if st.leave {
			c, err = s.RemoveMember(ctx, st.e)
		} else {
			c, err = s.AddMember(ctx, st.e)
		}
		if err != nil || c.Applied != st.wantApplied || c.NoticeStored != st.wantNotice {
			t.Errorf("%s = %+v, %v; want applied %v, notice %v", st.name, c, err, st.wantApplied, st.wantNotice)
		}
	}
	msgs := allMessages(t, s, g.ID)
	var got []string
	for _, m := range msgs {
		got = append(got, m.RecipientUserID+": "+m.Text)
		if !m.System {
			t.Errorf("notice %s is not a system message", m.ID)
		}
	}
	if want := []string{"user_2: hello Hike act_notices", "user_2: hello Hike act_notices"}; !slices.Equal(got, want) {
		t.Errorf("notices = %q, want %q", got, want)
	}
	// The group's name can make a notice longer than a message may be: it
	// is cut to 4000 characters.
	long := strings.Repeat("é", 3995) + "{group_name}"
	c, err := s.AddMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: "user_6", EventTime: at(1), Notice: store.Notice{Text: long}})
	if err != nil || !c.NoticeStored {
		t.Fatalf("long notice: %+v, %v", c, err)
	}
	msgs = allMessages(t, s, g.ID)
	if text := msgs[len(msgs)-1].Text; utf8.RuneCountInString(text) != 4000 || !strings.HasSuffix(text, "éHike ") {
		t.Errorf("long notice has %d characters, ends %q; want 4000, cut", utf8.RuneCountInString(text), text[len(text)-8:])
	}
}

func testListMessagesConcurrentWriters(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_msg_writers")
	const writers, each = 8, 40
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Half of the writes are membership notices, which take
				// their sequence inside a longer transaction.
				var err error
				if i%2 == 0 {
					_, _, err = s.SendSystemMessage(ctx, store.NewMessage{GroupID: g.ID, Text: fmt.Sprintf("%d.%d", w, i)})
				} else {
					_, err = s.AddMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: fmt.Sprintf("user_%d_%d", w, i),
						EventTime: at(i), Notice: store.Notice{Text: fmt.Sprintf("%d.%d", w, i)}})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	// The reader tails the group one message a page: it keeps the token
	// that returned its last message and asks again until a next token
	// appears. A message committed with a smaller position than one the
	// reader has passed would never be seen.
	var seen []string
	token, last := "", ""
	finished := false
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the tailing reader did not catch up in 2 minutes: %d messages seen", len(seen))
		}
		msgs, next, err := s.ListMessages(ctx, g.ID, store.Page{Size: 1, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 1 && msgs[0].ID != last {
			last = msgs[0].ID
			seen = append(seen, last)
		}
		if next != "" {
			token = next
			continue
		}
		if finished {
			break
		}
		select {
		case <-done:
			finished = true
		default:
		}
	}
	<-done
	var all []string
	for _, m := range allMessages(t, s, g.ID) {
		all = append(all, m.ID)
	}
	if len(all) != writers*each {
		t.Fatalf("%d messages stored, want %d", len(all), writers*each)
	}
	if !slices.Equal(seen, all) {
		missed := 0
		for _, id := range all {
			if !slices.Contains(seen, id) {
				missed++
			}
		}
		t.Errorf("the tailing reader saw %d of %d messages (%d skipped)", len(seen), len(all), missed)
	}
}
