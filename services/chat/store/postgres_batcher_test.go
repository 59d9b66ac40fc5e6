package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// openBatcherPostgres opens the PostgreSQL store on a schema of its own,
// or skips the test without CHAT_TEST_POSTGRES_DSN. It returns the DSN too,
// for a second store on the same database.
func openBatcherPostgres(t *testing.T) (*postgresStore, string) {
	t.Helper()
	base := os.Getenv("CHAT_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("CHAT_TEST_POSTGRES_DSN is not set")
	}
	dsn := ownSchema(t, base)
	return openPostgresAt(t, dsn), dsn
}

func openPostgresAt(t *testing.T, dsn string) *postgresStore {
	t.Helper()
	s, err := OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*postgresStore)
}

// openPostgresWithGroup opens the PostgreSQL store on a schema of its
// own and creates the group of act_1.
func openPostgresWithGroup(t *testing.T) (*postgresStore, Group) {
	t.Helper()
	s, _ := openBatcherPostgres(t)
	g, _, err := s.CreateGroup(context.Background(), NewGroup{ActivityID: "act_1", OwnerID: "owner", Name: "Hike"})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s, g
}

// postgresJoinRequest returns a request that adds user to the group of
// activity act with a notice, and stores the outcome in *c.
func postgresJoinRequest(act, user string, c *MembershipChange) *postgresRequest {
	e := MembershipEvent{ActivityID: act, UserID: user, EventTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Notice: Notice{Text: user + " joined", IdempotencyKey: "join-" + user}}
	return &postgresRequest{ctx: context.Background(), run: func(ctx context.Context, tx postgresQuerier) (err error) {
		*c, err = postgresMembershipInTx(ctx, tx, false, e, false)
		return err
	}}
}

// txID returns the id of tx's transaction.
func txID(ctx context.Context, tx postgresQuerier) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `SELECT txid_current()`).Scan(&id)
	return id, err
}

// TestPostgresBatchFailingRequest commits one batch in which a request
// fails after writing, and checks that all ran in one transaction, that
// each gets its own outcome and that only the failed one's writes are
// undone.
func TestPostgresBatchFailingRequest(t *testing.T) {
	ctx := context.Background()
	s, g := openPostgresWithGroup(t)
	defer s.Close()
	var c1, c2, c4 MembershipChange
	var txs [5]int64
	withTxID := func(i int, r *postgresRequest) *postgresRequest {
		run := r.run
		r.run = func(ctx context.Context, tx postgresQuerier) (err error) {
			if txs[i], err = txID(ctx, tx); err != nil {
				return err
			}
			return run(ctx, tx)
		}
		return r
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	batch := []*postgresRequest{
		withTxID(0, postgresJoinRequest("act_1", "user_1", &c1)),
		// Writes a join and its notice, then fails a constraint: its
		// writes must be rolled back, the others' kept.
		withTxID(1, &postgresRequest{ctx: ctx, run: func(ctx context.Context, tx postgresQuerier) error {
			if err := postgresJoinRequest("act_1", "user_x", &c2).run(ctx, tx); err != nil || !c2.Applied {
				t.Errorf("user_x before the failure: %+v, %v", c2, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO groups (group_id, activity_id, name, owner_id, created_at) VALUES ($1, 'act_x', 'x', 'x', now())`, g.ID)
			return err
		}}),
		{ctx: cancelled, run: func(context.Context, postgresQuerier) error { t.Error("a cancelled request ran"); return nil }},
		withTxID(3, postgresJoinRequest("act_1", "user_4", &c4)),
	}
	errs := make([]error, len(batch))
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if err := runPostgresBatch(ctx, conn.Conn(), batch, errs); err != nil {
		t.Fatalf("the batch failed as a whole: %v", err)
	}
	var pgErr *pgconn.PgError
	if errs[0] != nil || !errors.As(errs[1], &pgErr) || pgErr.Code != "23505" || !errors.Is(errs[2], context.Canceled) || errs[3] != nil {
		t.Errorf("outcomes %v; want nil, a unique violation, context.Canceled, nil", errs)
	}
	if txs[0] == 0 || txs[1] != txs[0] || txs[3] != txs[0] {
		t.Errorf("transactions %v: the requests did not run in one", txs)
	}
	if !c1.Applied || !c1.NoticeStored || !c4.Applied || !c4.NoticeStored {
		t.Errorf("user_1 %+v, user_4 %+v", c1, c4)
	}
	members, _, err := s.ListMembers(ctx, g.ID, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 || members[1].UserID != "user_1" && members[2].UserID != "user_1" {
		t.Errorf("members %+v; want owner, user_1 and user_4", members)
	}
	msgs, _, err := s.ListMessages(ctx, g.ID, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Errorf("%d notices, want 2 (user_x's is rolled back)", len(msgs))
	}
}

// TestPostgresBatchDeadlockRunsAlone checks that a batch whose request is
// chosen as a deadlock victim runs again, each request in a transaction of
// its own, and that every change is committed once.
func TestPostgresBatchDeadlockRunsAlone(t *testing.T) {
	ctx := context.Background()
	s, g := openPostgresWithGroup(t)
	defer s.Close()
	var c1, c2 MembershipChange
	victim := postgresJoinRequest("act_1", "user_2", &c2)
	join := victim.run
	var batched atomic.Int32
	victim.run = func(ctx context.Context, tx postgresQuerier) error {
		if _, inBatch := tx.(*pipelinedTx); inBatch {
			batched.Add(1)
			if err := join(ctx, tx); err != nil {
				return err
			}
			return &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
		}
		return join(ctx, tx)
	}
	errs := s.batcher.commit([]*postgresRequest{postgresJoinRequest("act_1", "user_1", &c1), victim})
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("outcomes %v, want none failed", errs)
	}
	if batched.Load() != 1 || !c1.Applied || !c2.Applied {
		t.Errorf("batched runs %d, user_1 %+v, user_2 %+v", batched.Load(), c1, c2)
	}
	msgs, _, err := s.ListMessages(ctx, g.ID, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Errorf("%d notices, want 2", len(msgs))
	}
	if n := s.batcher.failedBatches.Load(); n != 1 {
		t.Errorf("%d failed batches, want 1", n)
	}
}

// TestPostgresBatcherGathersQueuedRequests checks that the changes queued
// while the workers are busy commit in one transaction.
func TestPostgresBatcherGathersQueuedRequests(t *testing.T) {
	ctx := context.Background()
	s, _ := openPostgresWithGroup(t)
	defer s.Close()
	release, wait := blockWorkers(t, s.batcher.writeQueue, postgresBatchWorkers)
	const n = 6
	txs := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var c MembershipChange
			r := postgresJoinRequest("act_1", fmt.Sprintf("user_%d", i), &c)
			errs[i] = s.batcher.do(ctx, "a:act_1", func(ctx context.Context, tx postgresQuerier) (err error) {
				if err := r.run(ctx, tx); err != nil || !c.Applied {
					return fmt.Errorf("%+v, %w", c, err)
				}
				txs[i], err = txID(ctx, tx)
				return err
			})
		})
	}
	waitQueued(t, s.batcher.writeQueue, n)
	close(release)
	wait()
	wg.Wait()
	for i := range n {
		if errs[i] != nil || txs[i] != txs[0] {
			t.Errorf("request %d: transaction %d (request 0's %d), %v", i, txs[i], txs[0], errs[i])
		}
	}
}

// TestPostgresBatcherAbandonedRequest checks that a change whose context
// ends while it is queued returns the context's error at once and never
// runs.
func TestPostgresBatcherAbandonedRequest(t *testing.T) {
	s, _ := openBatcherPostgres(t)
	defer s.Close()
	release, wait := blockWorkers(t, s.batcher.writeQueue, postgresBatchWorkers)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.AddMember(ctx, MembershipEvent{ActivityID: "act_1", UserID: "user_1", EventTime: time.Now()})
		done <- err
	}()
	waitQueued(t, s.batcher.writeQueue, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned request: %v, want context.Canceled", err)
	}
	close(release)
	wait()
	var pending int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM pending_members`).Scan(&pending); err != nil || pending != 0 {
		t.Errorf("%d pending changes (%v): the abandoned request ran", pending, err)
	}
}

// TestPostgresBatcherClosed checks that Close answers the changes queued
// before it and fails the later ones.
func TestPostgresBatcherClosed(t *testing.T) {
	s, _ := openBatcherPostgres(t)
	release, wait := blockWorkers(t, s.batcher.writeQueue, postgresBatchWorkers)
	event := MembershipEvent{ActivityID: "act_1", UserID: "user_1", EventTime: time.Now()}
	queued := make(chan error, 1)
	go func() {
		c, err := s.AddMember(context.Background(), event)
		if err == nil && !c.Pending {
			err = fmt.Errorf("%+v, want a pending change", c)
		}
		queued <- err
	}()
	waitQueued(t, s.batcher.writeQueue, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	waitClosed(t, s.batcher.writeQueue)
	if _, err := s.AddMember(context.Background(), event); !errors.Is(err, errStoreClosed) {
		t.Errorf("change after Close: %v, want errStoreClosed", err)
	}
	close(release)
	wait()
	if err := <-queued; err != nil {
		t.Errorf("change queued before Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestPostgresBatchersOfTwoReplicas runs joins and leaves from two stores
// on one database, as two chat service replicas, over the same few groups,
// so that their batches lock the same rows. Ordered by activity, the
// batches never deadlock: none fails as a whole (had one, its requests
// would run again alone: no caller may see an error either way), and
// every notice is stored.
func TestPostgresBatchersOfTwoReplicas(t *testing.T) {
	ctx := context.Background()
	a, dsn := openBatcherPostgres(t)
	defer a.Close()
	b := openPostgresAt(t, dsn)
	defer b.Close()
	const groups, clients, perClient = 4, 8, 40
	for i := range groups {
		if _, _, err := a.CreateGroup(ctx, NewGroup{ActivityID: fmt.Sprintf("act_%d", i), OwnerID: "owner", Name: "Hike"}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for c := range clients {
		s := []*postgresStore{a, b}[c%2]
		wg.Go(func() {
			for i := range perClient {
				// Each client walks the groups from another one, so that
				// the requests of one batch name them in every order.
				e := MembershipEvent{ActivityID: fmt.Sprintf("act_%d", (c+i)%groups), UserID: fmt.Sprintf("user_%d_%d", c, i), EventTime: at,
					Notice: Notice{Text: "joined", IdempotencyKey: fmt.Sprintf("join_%d_%d", c, i)}}
				if ch, err := s.AddMember(ctx, e); err != nil || !ch.Applied {
					t.Errorf("AddMember %s: %+v, %v", e.UserID, ch, err)
					return
				}
				e.EventTime, e.Notice.IdempotencyKey = at.Add(time.Second), fmt.Sprintf("leave_%d_%d", c, i)
				if ch, err := s.RemoveMember(ctx, e); err != nil || !ch.Applied {
					t.Errorf("RemoveMember %s: %+v, %v", e.UserID, ch, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var notices int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&notices); err != nil {
		t.Fatal(err)
	}
	if want := 2 * clients * perClient; notices != want {
		t.Errorf("%d notices, want %d", notices, want)
	}
	if n := a.batcher.failedBatches.Load() + b.batcher.failedBatches.Load(); n != 0 {
		t.Errorf("%d batches failed as a whole (deadlocks)", n)
	}
}
