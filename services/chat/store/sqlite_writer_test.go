package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestSQLiteWriterBatch commits one batch of requests, some of which fail
// after writing, and checks that each request gets its own outcome and that
// only the failed requests' writes are undone.
func TestSQLiteWriterBatch(t *testing.T) {
	ctx := context.Background()
	st, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqliteStore)
	g, _, err := s.CreateGroup(ctx, NewGroup{ActivityID: "act_1", OwnerID: "owner", Name: "Hike"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	join := func(user string, c *MembershipChange) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) (err error) {
			*c, err = s.membershipInTx(ctx, tx, s.join[byGroup], byGroup, false,
				MembershipEvent{GroupID: g.ID, UserID: user, EventTime: at, Notice: Notice{Text: user + " joined"}}, g.ID, at.UnixMicro(), 0)
			return err
		}
	}
	var c1, c3, c5 MembershipChange
	var dup groupOutcome
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	batch := []*writeRequest{
		{ctx: ctx, run: join("user_1", &c1)},
		// Writes a join and its notice, then fails a constraint: its
		// writes must be rolled back, the others' kept.
		{ctx: ctx, run: func(ctx context.Context, tx *sql.Tx) error {
			var c MembershipChange
			if err := join("user_2", &c)(ctx, tx); err != nil || !c.Applied {
				t.Errorf("user_2 before the failure: %+v, %v", c, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO groups (group_id, activity_id, name, owner_id, created_at) VALUES (?1, 'act_x', 'x', 'x', 0)`, g.ID)
			return err
		}},
		{ctx: ctx, run: join("user_3", &c3)},
		{ctx: ctx, run: func(ctx context.Context, tx *sql.Tx) error {
			_, dup.created, dup.err = s.createGroupInTx(ctx, tx, NewGroup{ActivityID: "act_1", OwnerID: "other", Name: "Again"})
			return dup.err
		}},
		{ctx: cancelled, run: func(ctx context.Context, tx *sql.Tx) error { t.Error("a cancelled request ran"); return nil }},
		{ctx: ctx, run: join("user_5", &c5)},
	}
	errs := s.writer.commit(batch, nil)
	if len(errs) != len(batch) {
		t.Fatalf("%d outcomes for %d requests", len(errs), len(batch))
	}
	for i, want := range []bool{true, false, true, true, false, true} {
		if (errs[i] == nil) != want {
			t.Errorf("request %d: error %v", i, errs[i])
		}
	}
	if !errors.Is(errs[4], context.Canceled) {
		t.Errorf("cancelled request: %v", errs[4])
	}
	if dup.created {
		t.Error("a second group was created for act_1")
	}
	for name, c := range map[string]MembershipChange{"user_1": c1, "user_3": c3, "user_5": c5} {
		if !c.Applied || !c.NoticeStored {
			t.Errorf("%s: %+v", name, c)
		}
	}
	members, _, err := s.ListMembers(ctx, g.ID, Page{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range members {
		got = append(got, m.UserID)
	}
	if want := []string{"owner", "user_1", "user_3", "user_5"}; !equalStrings(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	msgs, _, err := s.ListMessages(ctx, g.ID, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Errorf("%d notices, want 3 (user_2's is rolled back)", len(msgs))
	}
}

// groupOutcome is a CreateGroup outcome.
type groupOutcome struct {
	created bool
	err     error
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
