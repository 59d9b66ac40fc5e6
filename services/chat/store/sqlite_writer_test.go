package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
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
	batch := []*sqliteRequest{
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

// openFileSQLite opens the SQLite store on a file in t's directory.
func openFileSQLite(t *testing.T) *sqliteStore {
	t.Helper()
	st, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	return st.(*sqliteStore)
}

// TestSQLiteWriterGathersQueuedRequests checks that the requests that
// queue while the writer is busy are committed together, in one
// transaction, each with its own outcome.
func TestSQLiteWriterGathersQueuedRequests(t *testing.T) {
	s := openFileSQLite(t)
	defer s.Close()
	release, wait := blockWorkers(t, s.writer.writeQueue, 1)

	const n = 8
	txs := make([]*sql.Tx, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.writer.do(context.Background(), "", func(ctx context.Context, tx *sql.Tx) error {
				txs[i] = tx
				if i == 3 {
					return errors.New("request 3 fails")
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO groups (group_id, activity_id, name, owner_id, created_at) VALUES (?1, ?1, 'g', 'o', 0)`,
					fmt.Sprintf("grp_%d", i))
				return err
			})
		})
	}
	waitQueued(t, s.writer.writeQueue, n)
	close(release)
	wait()
	wg.Wait()
	for i := range n {
		if txs[i] != txs[0] {
			t.Errorf("request %d ran in another transaction than request 0", i)
		}
		if (errs[i] != nil) != (i == 3) {
			t.Errorf("request %d: %v", i, errs[i])
		}
	}
	var stored int
	if err := s.r.QueryRow(`SELECT count(*) FROM groups`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != n-1 {
		t.Errorf("%d groups stored, want %d", stored, n-1)
	}
}

// TestSQLiteWriterAbandonedRequest checks that a request whose context
// ends while it waits in the queue returns the context's error at once
// and never runs.
func TestSQLiteWriterAbandonedRequest(t *testing.T) {
	s := openFileSQLite(t)
	defer s.Close()
	release, wait := blockWorkers(t, s.writer.writeQueue, 1)
	defer wait()
	defer close(release)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.writer.do(ctx, "", func(context.Context, *sql.Tx) error {
			t.Error("an abandoned request ran")
			return nil
		})
	}()
	waitQueued(t, s.writer.writeQueue, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned request: %v, want context.Canceled", err)
	}
}

// TestSQLiteWriterClosed checks that Close answers the requests queued
// before it and fails the later ones.
func TestSQLiteWriterClosed(t *testing.T) {
	s := openFileSQLite(t)
	release, wait := blockWorkers(t, s.writer.writeQueue, 1)
	queuedDone := make(chan error, 1)
	go func() {
		queuedDone <- s.writer.do(context.Background(), "", func(context.Context, *sql.Tx) error { return nil })
	}()
	waitQueued(t, s.writer.writeQueue, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitClosed(t, s.writer.writeQueue)
	if err := s.writer.do(context.Background(), "", func(context.Context, *sql.Tx) error { return nil }); !errors.Is(err, errStoreClosed) {
		t.Errorf("request after Close: %v, want errStoreClosed", err)
	}
	close(release)
	wait()
	if err := <-queuedDone; err != nil {
		t.Errorf("request queued before Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}
