// Package storetest is the behaviour suite that every store.Store must
// pass. Each store's tests call Run with a function that opens a fresh,
// empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/activitychat/chat/services/chat/store"
)

// Opener opens a fresh, empty store for one test and closes it when the
// test ends, with tb.Cleanup.
type Opener func(tb testing.TB) store.Store

// Concurrency is the number of concurrent callers of the race tests.
const Concurrency = 50

// Run runs the suite against the stores that open returns, each subtest
// with a store of its own.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"CreateGroup", testCreateGroup},
		{"CreateGroupOwnerEventTime", testCreateGroupOwnerEventTime},
		{"CreateGroupConcurrent", testCreateGroupConcurrent},
		{"GroupNotFound", testGroupNotFound},
		{"Membership", testMembership},
		{"MembershipConverges", testMembershipConverges},
		{"MembershipNanoseconds", testMembershipNanoseconds},
		{"PendingChanges", testPendingChanges},
		{"PendingChangesConverge", testPendingChangesConverge},
		{"PendingChangeRacesCreateGroup", testPendingChangeRacesCreateGroup},
		{"Notices", testNotices},
		{"AddMemberConcurrent", testAddMemberConcurrent},
		{"MembershipConcurrentMixed", testMembershipConcurrentMixed},
		{"ConcurrentWritesWithFailures", testConcurrentWritesWithFailures},
		{"Owner", testOwner},
		{"ListMembers", testListMembers},
		{"ListMembersPaging", testListMembersPaging},
		{"SendSystemMessage", testSendSystemMessage},
		{"SendSystemMessageConcurrent", testSendSystemMessageConcurrent},
		{"ListMessagesPaging", testListMessagesPaging},
		{"ListMessagesConcurrentWriters", testListMessagesConcurrentWriters},
		{"InvalidPageToken", testInvalidPageToken},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, open(t))
		})
	}
}

// base is the event time the tests count from.
var base = time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)

// at returns base plus n minutes.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Minute) }

func newGroup(t *testing.T, s store.Store, activityID string) store.Group {
	t.Helper()
	g, created, err := s.CreateGroup(context.Background(), store.NewGroup{ActivityID: activityID, OwnerID: "owner_1", Name: "Hike " + activityID})
	if err != nil {
		t.Fatalf("CreateGroup(%s): %v", activityID, err)
	}
	if !created {
		t.Fatalf("CreateGroup(%s): created = false for a new activity", activityID)
	}
	return g
}

func memberIDs(t *testing.T, s store.Store, groupID string) []string {
	t.Helper()
	var ids []string
	token := ""
	for {
		members, next, err := s.ListMembers(context.Background(), groupID, store.Page{Size: 1000, Token: token})
		if err != nil {
			t.Fatalf("ListMembers: %v", err)
		}
		for _, m := range members {
			ids = append(ids, m.UserID)
		}
		if next == "" {
			return ids
		}
		token = next
	}
}

func memberCount(t *testing.T, s store.Store, groupID string) int64 {
	t.Helper()
	g, err := s.GroupByID(context.Background(), groupID)
	if err != nil {
		t.Fatalf("GroupByID: %v", err)
	}
	return g.MemberCount
}

func testCreateGroup(t *testing.T, s store.Store) {
	ctx := context.Background()
	g, created, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: "act_1", OwnerID: "user_1", Name: "Hike"})
	if err != nil || !created {
		t.Fatalf("CreateGroup = created %v, err %v; want created", created, err)
	}
	if len(g.ID) < 10 || g.ID[:4] != "grp_" {
		t.Errorf("group id %q does not look like grp_…", g.ID)
	}
	want := store.Group{ID: g.ID, ActivityID: "act_1", Name: "Hike", OwnerID: "user_1", MemberCount: 1, CreatedAt: g.CreatedAt}
	if g != want {
		t.Errorf("CreateGroup = %+v, want %+v", g, want)
	}
	if g.CreatedAt.IsZero() || time.Since(g.CreatedAt) > time.Minute {
		t.Errorf("CreatedAt = %v, want about now", g.CreatedAt)
	}

	again, created, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: "act_1", OwnerID: "user_2", Name: "Other"})
	if err != nil || created {
		t.Fatalf("repeated CreateGroup = created %v, err %v; want the existing group", created, err)
	}
	if again != g {
		t.Errorf("repeated CreateGroup = %+v, want %+v", again, g)
	}
	for name, get := range map[string]func() (store.Group, error){
		"GroupByID":         func() (store.Group, error) { return s.GroupByID(ctx, g.ID) },
		"GroupByActivityID": func() (store.Group, error) { return s.GroupByActivityID(ctx, "act_1") },
	} {
		got, err := get()
		if err != nil || got != g {
			t.Errorf("%s = %+v, %v; want %+v", name, got, err, g)
		}
	}
	members, _, err := s.ListMembers(ctx, g.ID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	wantMembers := []store.Member{{UserID: "user_1", Role: store.RoleOwner, JoinedAt: g.CreatedAt}}
	if !slices.Equal(members, wantMembers) {
		t.Errorf("members = %+v, want %+v", members, wantMembers)
	}
}

// The owner's membership carries the activity's event time when given, so
// that membership stays decided by event time.
func testCreateGroupOwnerEventTime(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := time.Date(2024, 1, 1, 10, 0, 0, 123456789, time.UTC)
	g, _, err := s.CreateGroup(ctx, store.NewGroup{ActivityID: "act_et", OwnerID: "user_1", Name: "Hike", OwnerJoinedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	members, _, err := s.ListMembers(ctx, g.ID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Member{{UserID: "user_1", Role: store.RoleOwner, JoinedAt: at.Truncate(time.Microsecond)}}
	if !slices.EqualFunc(members, want, func(a, b store.Member) bool {
		return a.UserID == b.UserID && a.Role == b.Role && a.JoinedAt.Equal(b.JoinedAt)
	}) {
		t.Errorf("members = %+v, want %+v", members, want)
	}
}

func testCreateGroupConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	groups := make([]store.Group, Concurrency)
	created := make([]bool, Concurrency)
	errs := make([]error, Concurrency)
	for i := range Concurrency {
		wg.Go(func() {
			groups[i], created[i], errs[i] = s.CreateGroup(ctx, store.NewGroup{ActivityID: "act_race", OwnerID: fmt.Sprintf("user_%d", i), Name: "Race"})
		})
	}
	wg.Wait()
	createdCount := 0
	for i := range Concurrency {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if groups[i].ID != groups[0].ID {
			t.Errorf("caller %d got group %s, caller 0 got %s", i, groups[i].ID, groups[0].ID)
		}
		if created[i] {
			createdCount++
		}
	}
	if createdCount != 1 {
		t.Errorf("%d callers were told created = true, want 1", createdCount)
	}
	if n := memberCount(t, s, groups[0].ID); n != 1 {
		t.Errorf("member count = %d, want 1 (the owner)", n)
	}
}

func testGroupNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	newGroup(t, s, "act_1")
	calls := map[string]func() error{
		"GroupByID": func() error { _, err := s.GroupByID(ctx, "grp_missing"); return err },
		"GroupByActivityID": func() error {
			_, err := s.GroupByActivityID(ctx, "act_missing")
			return err
		},
		"AddMember": func() error {
			_, err := s.AddMember(ctx, store.MembershipEvent{GroupID: "grp_missing", UserID: "user_2", EventTime: at(1)})
			return err
		},
		"RemoveMember": func() error {
			_, err := s.RemoveMember(ctx, store.MembershipEvent{GroupID: "grp_missing", UserID: "user_2", EventTime: at(1)})
			return err
		},
		"ListMembers": func() error { _, _, err := s.ListMembers(ctx, "grp_missing", store.Page{}); return err },
		"SendSystemMessage": func() error {
			_, _, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: "grp_missing", Text: "hi"})
			return err
		},
		"SendSystemMessageWithKey": func() error {
			_, _, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: "grp_missing", Text: "hi", IdempotencyKey: "k"})
			return err
		},
		"ListMessages": func() error { _, _, err := s.ListMessages(ctx, "grp_missing", store.Page{}); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	}
}

// event is a join or leave of user_2 at a minute past base.
type event struct {
	leave  bool
	minute int
}

func (e event) String() string {
	if e.leave {
		return fmt.Sprintf("leave@%d", e.minute)
	}
	return fmt.Sprintf("join@%d", e.minute)
}

func apply(t *testing.T, s store.Store, groupID string, e event) store.MembershipChange {
	t.Helper()
	var (
		c   store.MembershipChange
		err error
	)
	if e.leave {
		c, err = s.RemoveMember(context.Background(), store.MembershipEvent{GroupID: groupID, UserID: "user_2", EventTime: at(e.minute)})
	} else {
		c, err = s.AddMember(context.Background(), store.MembershipEvent{GroupID: groupID, UserID: "user_2", EventTime: at(e.minute)})
	}
	if err != nil {
		t.Fatalf("%v: %v", e, err)
	}
	return c
}

func testMembership(t *testing.T, s store.Store) {
	type step struct {
		event
		want store.MembershipChange
	}
	joined := store.MembershipChange{Applied: true, IsMember: true}
	left := store.MembershipChange{Applied: true, IsMember: false}
	stillMember := store.MembershipChange{IsMember: true}
	stillOut := store.MembershipChange{}
	tests := []struct {
		name  string
		steps []step
	}{
		{"join", []step{{event{false, 1}, joined}}},
		{"repeated join", []step{{event{false, 1}, joined}, {event{false, 1}, stillMember}}},
		{"newer join while member", []step{{event{false, 1}, joined}, {event{false, 2}, stillMember}}},
		{"join then leave", []step{{event{false, 1}, joined}, {event{true, 2}, left}}},
		{"repeated leave", []step{{event{false, 1}, joined}, {event{true, 2}, left}, {event{true, 2}, stillOut}}},
		{"leave older than join is ignored", []step{{event{false, 2}, joined}, {event{true, 1}, stillMember}}},
		{"leave at the join's time wins", []step{{event{false, 2}, joined}, {event{true, 2}, left}}},
		{"join at the leave's time is ignored", []step{{event{false, 1}, joined}, {event{true, 2}, left}, {event{false, 2}, stillOut}}},
		{"join at a stranger's leave's time is ignored", []step{{event{true, 2}, stillOut}, {event{false, 2}, stillOut}}},
		{"leave of a stranger", []step{{event{true, 2}, stillOut}}},
		{"join older than a stranger's leave is ignored", []step{{event{true, 2}, stillOut}, {event{false, 1}, stillOut}}},
		{"join newer than a stranger's leave", []step{{event{true, 2}, stillOut}, {event{false, 3}, joined}}},
		{"rejoin", []step{{event{false, 1}, joined}, {event{true, 2}, left}, {event{false, 3}, joined}}},
		{"late join after rejoin", []step{{event{false, 3}, joined}, {event{true, 2}, stillMember}, {event{false, 1}, stillMember}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGroup(t, s, fmt.Sprintf("act_m%d", i))
			for _, st := range tt.steps {
				if got := apply(t, s, g.ID, st.event); got != st.want {
					t.Errorf("%v = %+v, want %+v", st.event, got, st.want)
				}
			}
			last := tt.steps[len(tt.steps)-1].want
			wantIDs := []string{"owner_1"}
			wantCount := int64(1)
			if last.IsMember {
				wantIDs = append(wantIDs, "user_2")
				wantCount = 2
			}
			if got := memberIDs(t, s, g.ID); !slices.Equal(got, wantIDs) {
				t.Errorf("members = %v, want %v", got, wantIDs)
			}
			if got := memberCount(t, s, g.ID); got != wantCount {
				t.Errorf("member count = %d, want %d", got, wantCount)
			}
		})
	}
}

// permutations returns every order of events.
func permutations(events []event) [][]event {
	if len(events) <= 1 {
		return [][]event{slices.Clone(events)}
	}
	var out [][]event
	for i := range events {
		rest := slices.Concat(events[:i], events[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]event{events[i]}, p...))
		}
	}
	return out
}

func testMembershipConverges(t *testing.T, s store.Store) {
	tests := []struct {
		name       string
		events     []event
		wantMember bool
		wantJoined int // minute of joined_at when a member
	}{
		{"join, leave", []event{{false, 1}, {true, 2}}, false, 0},
		{"leave, join", []event{{true, 1}, {false, 2}}, true, 2},
		{"join, leave, join", []event{{false, 1}, {true, 2}, {false, 3}}, true, 3},
		{"join, leave, join, leave", []event{{false, 1}, {true, 2}, {false, 3}, {true, 4}}, false, 0},
		{"join and leave at one time", []event{{false, 2}, {true, 2}}, false, 0},
		{"join, leave, rejoin at the leave's time", []event{{false, 1}, {true, 2}, {false, 2}}, false, 0},
		{"join, leave at the join's time, rejoin", []event{{false, 1}, {true, 1}, {false, 2}}, true, 2},
	}
	n := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, order := range permutations(tt.events) {
				n++
				g := newGroup(t, s, fmt.Sprintf("act_c%d", n))
				for _, e := range order {
					apply(t, s, g.ID, e)
				}
				members, _, err := s.ListMembers(context.Background(), g.ID, store.Page{})
				if err != nil {
					t.Fatal(err)
				}
				isMember := len(members) == 2
				if isMember != tt.wantMember {
					t.Errorf("order %v: member = %v, want %v", order, isMember, tt.wantMember)
					continue
				}
				if isMember && !members[1].JoinedAt.Equal(at(tt.wantJoined)) {
					t.Errorf("order %v: joined at %v, want %v", order, members[1].JoinedAt, at(tt.wantJoined))
				}
			}
		})
	}
}

func testMembershipNanoseconds(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_ns")
	t0 := base.Add(123456100 * time.Nanosecond)
	ev := func(d time.Duration) store.MembershipEvent {
		return store.MembershipEvent{GroupID: g.ID, UserID: "user_2", EventTime: t0.Add(d)}
	}
	if c, err := s.AddMember(ctx, ev(0)); err != nil || !c.Applied {
		t.Fatalf("AddMember = %+v, %v", c, err)
	}
	// Within the same microsecond, a later leave is no repeat.
	if c, err := s.RemoveMember(ctx, ev(500*time.Nanosecond)); err != nil || !c.Applied || c.IsMember {
		t.Errorf("RemoveMember 500ns later = %+v, %v; want applied", c, err)
	}
	// An older join in the same microsecond is ignored, a newer one applies.
	if c, err := s.AddMember(ctx, ev(300*time.Nanosecond)); err != nil || c.Applied || c.IsMember {
		t.Errorf("AddMember 200ns before the leave = %+v, %v; want ignored", c, err)
	}
	if c, err := s.AddMember(ctx, ev(600*time.Nanosecond)); err != nil || !c.Applied || !c.IsMember {
		t.Errorf("AddMember 100ns after the leave = %+v, %v; want applied", c, err)
	}
	// A zone other than UTC names the same instant: the leave at the
	// join's instant wins, and a join at it again is a repeat.
	other := time.FixedZone("X", 3600)
	if c, err := s.RemoveMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: "user_2", EventTime: t0.Add(600 * time.Nanosecond).In(other)}); err != nil || !c.Applied {
		t.Errorf("RemoveMember at the join's instant in another zone = %+v, %v; want applied", c, err)
	}
	if c, err := s.AddMember(ctx, ev(600*time.Nanosecond)); err != nil || c.Applied || c.IsMember {
		t.Errorf("AddMember at the leave's instant = %+v, %v; want ignored", c, err)
	}
}

func testAddMemberConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_race")
	var wg sync.WaitGroup
	changes := make([]store.MembershipChange, Concurrency)
	errs := make([]error, Concurrency)
	for i := range Concurrency {
		wg.Go(func() {
			changes[i], errs[i] = s.AddMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: "user_2", EventTime: at(1)})
		})
	}
	wg.Wait()
	applied := 0
	for i := range Concurrency {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !changes[i].IsMember {
			t.Errorf("caller %d: IsMember = false", i)
		}
		if changes[i].Applied {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("%d callers were told applied = true, want 1", applied)
	}
	if got := memberIDs(t, s, g.ID); !slices.Equal(got, []string{"owner_1", "user_2"}) {
		t.Errorf("members = %v", got)
	}
	if n := memberCount(t, s, g.ID); n != 2 {
		t.Errorf("member count = %d, want 2", n)
	}
}

func testMembershipConcurrentMixed(t *testing.T, s store.Store) {
	// Joins and leaves of several users race; each user's final state is
	// that of their latest event, whatever the interleaving.
	ctx := context.Background()
	g := newGroup(t, s, "act_mixed")
	const users = 10
	var wg sync.WaitGroup
	errs := make(chan error, users*5)
	for u := range users {
		user := fmt.Sprintf("user_%02d", u)
		for m := 1; m <= 5; m++ {
			wg.Go(func() {
				var err error
				// Odd minutes join, even minutes leave; users with an
				// even number end on minute 5 (join), others stop at 4.
				if m == 5 && u%2 == 1 {
					return
				}
				if m%2 == 1 {
					_, err = s.AddMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: user, EventTime: at(m)})
				} else {
					_, err = s.RemoveMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: user, EventTime: at(m)})
				}
				if err != nil {
					errs <- fmt.Errorf("%s minute %d: %w", user, m, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := []string{"owner_1"}
	for u := 0; u < users; u += 2 {
		want = append(want, fmt.Sprintf("user_%02d", u))
	}
	if got := memberIDs(t, s, g.ID); !slices.Equal(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
}

func testOwner(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_owner")
	for _, when := range []time.Time{at(-10), at(10)} {
		if _, err := s.RemoveMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: "owner_1", EventTime: when}); !errors.Is(err, store.ErrOwnerImmutable) {
			t.Errorf("RemoveMember(owner, %v) err = %v, want ErrOwnerImmutable", when, err)
		}
	}
	c, err := s.AddMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: "owner_1", EventTime: at(20)})
	if err != nil || c != (store.MembershipChange{IsMember: true}) {
		t.Errorf("AddMember(owner) = %+v, %v; want no change, member", c, err)
	}
	members, _, err := s.ListMembers(ctx, g.ID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].Role != store.RoleOwner || !members[0].JoinedAt.Equal(g.CreatedAt) {
		t.Errorf("members = %+v, want the owner alone, joined at creation", members)
	}
}

func testListMembers(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_list")
	// The owner comes first although the others joined earlier; then join
	// time, then user id.
	for _, m := range []struct {
		user   string
		minute int
	}{{"user_c", 2}, {"user_b", 1}, {"user_a", 2}, {"user_gone", 1}} {
		if _, err := s.AddMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: m.user, EventTime: at(m.minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RemoveMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: "user_gone", EventTime: at(3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: "user_never", EventTime: at(3)}); err != nil {
		t.Fatal(err)
	}
	members, next, err := s.ListMembers(ctx, g.ID, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Member{
		{UserID: "owner_1", Role: store.RoleOwner, JoinedAt: g.CreatedAt},
		{UserID: "user_b", Role: store.RoleMember, JoinedAt: at(1)},
		{UserID: "user_a", Role: store.RoleMember, JoinedAt: at(2)},
		{UserID: "user_c", Role: store.RoleMember, JoinedAt: at(2)},
	}
	if !slices.EqualFunc(members, want, func(a, b store.Member) bool {
		return a.UserID == b.UserID && a.Role == b.Role && a.JoinedAt.Equal(b.JoinedAt)
	}) {
		t.Errorf("members = %+v\nwant %+v", members, want)
	}
	if next != "" {
		t.Errorf("next token = %q on the only page", next)
	}
	if n := memberCount(t, s, g.ID); n != 4 {
		t.Errorf("member count = %d, want 4", n)
	}
}

func testListMembersPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_paging")
	want := []string{"owner_1"}
	for i := range 7 {
		user := fmt.Sprintf("user_%d", i)
		if _, err := s.AddMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: user, EventTime: at(i % 3)}); err != nil {
			t.Fatal(err)
		}
	}
	// Sorted by join minute (i%3), then id.
	for _, minute := range []int{0, 1, 2} {
		for i := range 7 {
			if i%3 == minute {
				want = append(want, fmt.Sprintf("user_%d", i))
			}
		}
	}
	for _, size := range []int{1, 2, 3, 8, 100} {
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			var got []string
			token := ""
			pages := 0
			for {
				members, next, err := s.ListMembers(ctx, g.ID, store.Page{Size: size, Token: token})
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(members) > size {
					t.Fatalf("page of %d members, want at most %d", len(members), size)
				}
				for _, m := range members {
					got = append(got, m.UserID)
				}
				if next == "" {
					break
				}
				token = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("members = %v, want %v", got, want)
			}
			if wantPages := (len(want) + size - 1) / size; pages != wantPages && pages != wantPages+1 {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
		})
	}
}

func testSendSystemMessage(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_msg")
	other := newGroup(t, s, "act_msg_other")
	m1, created, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: g.ID, Text: "welcome", RecipientUserID: "user_2", IdempotencyKey: "joined:user_2"})
	if err != nil || !created {
		t.Fatalf("SendSystemMessage = created %v, err %v", created, err)
	}
	if len(m1.ID) < 10 || m1.ID[:4] != "msg_" || m1.GroupID != g.ID || m1.Text != "welcome" || m1.RecipientUserID != "user_2" || !m1.System || m1.CreatedAt.IsZero() {
		t.Errorf("message = %+v", m1)
	}
	again, created, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: g.ID, Text: "different text", IdempotencyKey: "joined:user_2"})
	if err != nil || created || again != m1 {
		t.Errorf("repeat = %+v, created %v, err %v; want %+v", again, created, err, m1)
	}
	// The key is per group.
	if _, created, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: other.ID, Text: "welcome", IdempotencyKey: "joined:user_2"}); err != nil || !created {
		t.Errorf("same key in another group: created %v, err %v; want a new message", created, err)
	}
	// Without a key every call stores a message.
	for range 2 {
		if _, created, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: g.ID, Text: "no key"}); err != nil || !created {
			t.Errorf("without a key: created %v, err %v", created, err)
		}
	}
	msgs, next, err := s.ListMessages(ctx, g.ID, store.Page{})
	if err != nil || next != "" {
		t.Fatalf("ListMessages: next %q, err %v", next, err)
	}
	var texts []string
	for _, m := range msgs {
		texts = append(texts, m.Text)
	}
	if want := []string{"welcome", "no key", "no key"}; !slices.Equal(texts, want) {
		t.Errorf("texts = %v, want %v", texts, want)
	}
	if msgs[0] != m1 {
		t.Errorf("listed %+v, want %+v", msgs[0], m1)
	}
}

func testSendSystemMessageConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_msg_race")
	var wg sync.WaitGroup
	msgs := make([]store.Message, Concurrency)
	created := make([]bool, Concurrency)
	errs := make([]error, Concurrency)
	for i := range Concurrency {
		wg.Go(func() {
			msgs[i], created[i], errs[i] = s.SendSystemMessage(ctx, store.NewMessage{GroupID: g.ID, Text: "hi", IdempotencyKey: "once"})
		})
	}
	wg.Wait()
	n := 0
	for i := range Concurrency {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if msgs[i].ID != msgs[0].ID {
			t.Errorf("caller %d got message %s, caller 0 got %s", i, msgs[i].ID, msgs[0].ID)
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d callers were told created = true, want 1", n)
	}
	listed, _, err := s.ListMessages(ctx, g.ID, store.Page{})
	if err != nil || len(listed) != 1 {
		t.Errorf("ListMessages = %d messages, %v; want 1", len(listed), err)
	}
}

func testListMessagesPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_msg_paging")
	other := newGroup(t, s, "act_msg_paging_other")
	var want []string
	for i := range 9 {
		m, _, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: g.ID, Text: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m.ID)
		if _, _, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: other.ID, Text: "noise"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int{1, 4, 9, 0} {
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			var got []string
			token := ""
			for {
				msgs, next, err := s.ListMessages(ctx, g.ID, store.Page{Size: size, Token: token})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					got = append(got, m.ID)
				}
				if next == "" {
					break
				}
				token = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("ids = %v, want %v", got, want)
			}
		})
	}
	empty := newGroup(t, s, "act_msg_empty")
	if msgs, next, err := s.ListMessages(ctx, empty.ID, store.Page{}); err != nil || len(msgs) != 0 || next != "" {
		t.Errorf("empty group: %v, %q, %v", msgs, next, err)
	}
}

func testInvalidPageToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	g := newGroup(t, s, "act_token")
	if _, _, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: g.ID, Text: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SendSystemMessage(ctx, store.NewMessage{GroupID: g.ID, Text: "b"}); err != nil {
		t.Fatal(err)
	}
	_, messageToken, err := s.ListMessages(ctx, g.ID, store.Page{Size: 1})
	if err != nil || messageToken == "" {
		t.Fatalf("ListMessages: token %q, err %v", messageToken, err)
	}
	for _, token := range []string{"%%%", "bm9wZQ", messageToken} {
		if _, _, err := s.ListMembers(ctx, g.ID, store.Page{Token: token}); !errors.Is(err, store.ErrInvalidPageToken) {
			t.Errorf("ListMembers(token %q) err = %v, want ErrInvalidPageToken", token, err)
		}
	}
	for _, token := range []string{"%%%", "bm9wZQ"} {
		if _, _, err := s.ListMessages(ctx, g.ID, store.Page{Token: token}); !errors.Is(err, store.ErrInvalidPageToken) {
			t.Errorf("ListMessages(token %q) err = %v, want ErrInvalidPageToken", token, err)
		}
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testConcurrentWritesWithFailures(t *testing.T, s store.Store) {
	// Concurrent writes of every kind, some of which fail, each get their
	// own result: a store that commits writes together must not let one
	// request's failure touch the others.
	ctx := context.Background()
	g := newGroup(t, s, "act_mixed")
	const n = 48
	var wg sync.WaitGroup
	errs := make([]error, n)
	changes := make([]store.MembershipChange, n)
	for i := range n {
		wg.Go(func() {
			user := fmt.Sprintf("user_%02d", i)
			switch i % 6 {
			case 0, 1: // joins that apply, with their notices
				changes[i], errs[i] = s.AddMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: user, EventTime: at(1),
					Notice: store.Notice{Text: user + " joined", IdempotencyKey: "join-" + user}})
			case 2: // a missing group by id
				changes[i], errs[i] = s.AddMember(ctx, store.MembershipEvent{GroupID: "grp_missing", UserID: user, EventTime: at(1)})
			case 3: // the owner cannot leave
				changes[i], errs[i] = s.RemoveMember(ctx, store.MembershipEvent{GroupID: g.ID, UserID: "owner_1", EventTime: at(2)})
			case 4: // a message to a missing group
				_, _, errs[i] = s.SendSystemMessage(ctx, store.NewMessage{GroupID: "grp_missing", Text: "x", IdempotencyKey: user})
			case 5: // a group of its own, and a pending change
				_, _, errs[i] = s.CreateGroup(ctx, store.NewGroup{ActivityID: "act_" + user, OwnerID: "owner_1", Name: user})
				if errs[i] == nil {
					changes[i], errs[i] = s.AddMember(ctx, store.MembershipEvent{ActivityID: "act_none_" + user, UserID: user, EventTime: at(1)})
				}
			}
		})
	}
	wg.Wait()
	var wantMembers []string
	for i := range n {
		user := fmt.Sprintf("user_%02d", i)
		switch i % 6 {
		case 0, 1:
			if errs[i] != nil || !changes[i].Applied || !changes[i].NoticeStored {
				t.Errorf("join %s: %+v, %v; want applied with its notice", user, changes[i], errs[i])
			}
			wantMembers = append(wantMembers, user)
		case 2, 4:
			if !errors.Is(errs[i], store.ErrNotFound) {
				t.Errorf("request %d: %v, want ErrNotFound", i, errs[i])
			}
		case 3:
			if !errors.Is(errs[i], store.ErrOwnerImmutable) {
				t.Errorf("owner leave: %v, want ErrOwnerImmutable", errs[i])
			}
		case 5:
			if errs[i] != nil || !changes[i].Pending {
				t.Errorf("request %d: %+v, %v; want a group and a pending change", i, changes[i], errs[i])
			}
			if _, err := s.GroupByActivityID(ctx, "act_"+user); err != nil {
				t.Errorf("group of %s: %v", user, err)
			}
		}
	}
	if got := memberIDs(t, s, g.ID); !slices.Equal(got, append([]string{"owner_1"}, wantMembers...)) {
		t.Errorf("members = %v", got)
	}
	msgs, _, err := s.ListMessages(ctx, g.ID, store.Page{Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(wantMembers) {
		t.Errorf("%d notices, want %d", len(msgs), len(wantMembers))
	}
}
