package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgresQuerier is what a membership change needs of its transaction: a
// pgx.Tx, or a pipelinedTx of a batch.
type postgresQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// postgresRequest is a request to the PostgreSQL batcher.
type postgresRequest = writeRequest[postgresQuerier]

const (
	// postgresBatchWorkers is how many batches run at once, each on a
	// connection of the pool: two, so that one batch runs its statements
	// while the other waits for its commit's WAL flush. More would split
	// the queue into smaller batches (fewer requests per commit), contend
	// for the same groups' row locks and take connections from the reads
	// (pgxpool's default size is max(4, CPUs)).
	postgresBatchWorkers = 2

	// maxPostgresBatch bounds a batch: each request is a subtransaction,
	// and PostgreSQL caches 64 subtransaction ids per transaction; beyond
	// that every other session's snapshots overflow to pg_subtrans.
	maxPostgresBatch = 64
)

// postgresBatcher commits concurrent membership changes in batches, like
// the SQLite writer, but with a few workers on the pool: each takes what
// is queued, orders it by key (the group or activity), and runs each
// request inside a SAVEPOINT of one transaction, so that one commit, and
// one WAL flush, serves many requests, while a request that fails is
// rolled back alone and gets its own error.
//
// Row locks: a change locks its member row and, with its notice, its
// group's row until the commit. Batches that take groups in the same order
// cannot deadlock with each other, whichever worker or replica runs them.
// (Requests that name the same group once by id and once by activity are
// ordered by different keys; a deadlock there, or a serialization failure
// or a failed commit, makes the batch run again one request per
// transaction, as without batching.)
//
// Round trips: BEGIN, and each request's RELEASE of the previous savepoint
// and its own SAVEPOINT, go in one pipeline with the request's first
// statement (pipelinedTx), so a batch of n changes with notices costs 2n+1
// round trips instead of 4n.
type postgresBatcher struct {
	*writeQueue[postgresQuerier]
	pool    *pgxpool.Pool
	stopped sync.WaitGroup

	// failedBatches counts the batches that failed as a whole and ran
	// again one request at a time.
	failedBatches atomic.Int64
}

func newPostgresBatcher(pool *pgxpool.Pool) *postgresBatcher {
	b := &postgresBatcher{writeQueue: newWriteQueue[postgresQuerier](maxPostgresBatch), pool: pool}
	for range postgresBatchWorkers {
		b.stopped.Go(b.loop)
	}
	return b
}

// close stops the workers once the requests queued so far are done; later
// ones fail with errStoreClosed.
func (b *postgresBatcher) close() {
	b.writeQueue.close()
	b.stopped.Wait()
}

func (b *postgresBatcher) loop() {
	batch := make([]*postgresRequest, 0, maxPostgresBatch)
	for {
		var ok bool
		if batch, ok = b.gather(batch[:0]); !ok {
			return
		}
		if len(batch) == 0 {
			continue
		}
		slices.SortStableFunc(batch, func(x, y *postgresRequest) int { return cmp.Compare(x.key, y.key) })
		answer(batch, b.commit(batch))
	}
}

// commit runs batch in one transaction and returns each request's error.
// When the batch as a whole fails, each request runs again alone.
func (b *postgresBatcher) commit(batch []*postgresRequest) []error {
	errs := make([]error, len(batch))
	ctx := context.Background()
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	// A connection left inside a transaction is closed by Release.
	defer conn.Release()
	if err := runPostgresBatch(ctx, conn.Conn(), batch, errs); err != nil {
		_, _ = conn.Exec(ctx, `ROLLBACK`) // the error is the batch's; Release closes a broken connection
		b.failedBatches.Add(1)
		for i, r := range batch {
			errs[i] = b.alone(r)
		}
	}
	return errs
}

// alone runs r in a transaction of its own.
func (b *postgresBatcher) alone(r *postgresRequest) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	return pgx.BeginFunc(r.ctx, b.pool, func(tx pgx.Tx) error { return r.run(r.ctx, tx) })
}

// runPostgresBatch runs batch in one transaction on conn, each request
// inside a savepoint when there are several, and commits it. It sets
// errs[i] to the error of request i, and returns an error when the batch
// as a whole failed: then nothing is committed.
func runPostgresBatch(ctx context.Context, conn *pgx.Conn, batch []*postgresRequest, errs []error) error {
	savepoints := len(batch) > 1
	tx := &pipelinedTx{conn: conn, pending: []string{`BEGIN`}}
	begun := false
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if savepoints {
			tx.pending = append(tx.pending, `SAVEPOINT request`)
		}
		err := r.run(context.WithoutCancel(r.ctx), tx)
		if tx.pendingErr != nil {
			return tx.pendingErr
		}
		begun = begun || tx.sent
		if tx.sent && savepoints {
			tx.pending = append(tx.pending, `RELEASE request`)
		}
		tx.sent = false
		if err == nil {
			continue
		}
		if retryable(err) {
			// A deadlock victim or a serialization failure runs again
			// alone.
			return err
		}
		errs[i] = err
		if !savepoints {
			_, _ = conn.Exec(ctx, `ROLLBACK`) // commit's Release closes a connection left in a transaction
			return nil
		}
		if _, err := conn.Exec(ctx, `ROLLBACK TO request`); err != nil {
			return fmt.Errorf("%w (after %w)", err, errs[i])
		}
	}
	if !begun {
		return nil
	}
	tag, err := conn.Exec(ctx, `COMMIT`)
	if err == nil && tag.String() != "COMMIT" {
		err = errors.New("postgres: the batch's transaction was rolled back")
	}
	return err
}

// retryable reports whether err is a deadlock or a serialization failure,
// which abort the victim's transaction, not only its statement.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// pipelinedTx is a batch's transaction as a request sees it: its first
// statement is sent in one pipeline behind the pending statements (BEGIN,
// RELEASE and SAVEPOINT), so they cost no round trip of their own.
type pipelinedTx struct {
	conn    *pgx.Conn
	pending []string
	// sent tells that a statement went out with the pending ones;
	// pendingErr is the error of a pending statement, which fails the
	// whole batch.
	sent       bool
	pendingErr error
}

// send sends the pending statements and sql in one pipeline and returns
// the results, positioned at sql's.
func (t *pipelinedTx) send(ctx context.Context, sql string, args []any) pgx.BatchResults {
	var b pgx.Batch
	for _, s := range t.pending {
		b.Queue(s)
	}
	b.Queue(sql, args...)
	t.pending, t.sent = t.pending[:0], true
	br := t.conn.SendBatch(ctx, &b)
	for range len(b.QueuedQueries) - 1 {
		if _, err := br.Exec(); err != nil && t.pendingErr == nil {
			t.pendingErr = err
		}
	}
	return br
}

func (t *pipelinedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if len(t.pending) == 0 {
		return t.conn.Exec(ctx, sql, args...)
	}
	br := t.send(ctx, sql, args)
	tag, err := br.Exec()
	if cerr := closeBatch(br, err); cerr != nil {
		return tag, cerr
	}
	return tag, err
}

func (t *pipelinedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if len(t.pending) == 0 {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	return pipelinedRow{br: t.send(ctx, sql, args)}
}

// closeBatch closes br and returns its error when err, the statement's, is
// nil (pgx repeats the statement's error on Close).
func closeBatch(br pgx.BatchResults, err error) error {
	cerr := br.Close()
	if err != nil {
		return nil
	}
	return cerr
}

// pipelinedRow is the row of a statement sent behind pending ones.
type pipelinedRow struct {
	br pgx.BatchResults
}

func (r pipelinedRow) Scan(dest ...any) error {
	err := r.br.QueryRow().Scan(dest...)
	if cerr := closeBatch(r.br, err); cerr != nil {
		return cerr
	}
	return err
}
