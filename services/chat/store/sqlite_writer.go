package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// maxWriteBatch bounds how many write requests the SQLite writer commits in
// one transaction.
const maxWriteBatch = 256

// errStoreClosed is returned by writes submitted after Close.
var errStoreClosed = errors.New("store: closed")

// writeRequest is one write waiting for the SQLite writer. run does the
// request's statements in the writer's transaction; done receives its
// outcome once the transaction is committed (or failed).
type writeRequest struct {
	ctx  context.Context
	run  func(ctx context.Context, tx *sql.Tx) error
	done chan error
}

// sqliteWriter is the one goroutine that writes to a SQLite database. It
// takes whatever requests are waiting when it becomes free (at most
// maxWriteBatch, never waiting for more), runs each one inside a SAVEPOINT
// of one transaction and commits them together: one commit (and one WAL
// sync point) for many requests, and the writer connection is held only by
// this goroutine, never across a caller's scheduling. A request whose
// statements fail is rolled back to its savepoint and gets its own error;
// the others of its batch are unaffected.
type sqliteWriter struct {
	db      *sql.DB
	reqs    chan *writeRequest
	quit    chan struct{}
	stopped chan struct{}

	// ckpt, when not nil, is a connection of its own that checkpoints the
	// WAL after commits (at most every checkpointEvery), so the writer
	// seldom reaches SQLite's automatic checkpoint, which copies pages and
	// syncs inside a commit. dirty tells it that the writer committed.
	ckpt        *sql.DB
	dirty       chan struct{}
	ckptStopped chan struct{}
}

// checkpointEvery is the least time between two background checkpoints.
const checkpointEvery = 100 * time.Millisecond

// newSQLiteWriter starts the writer of db and, when ckpt is not nil, its
// checkpointer.
func newSQLiteWriter(db, ckpt *sql.DB) *sqliteWriter {
	w := &sqliteWriter{db: db, reqs: make(chan *writeRequest), quit: make(chan struct{}), stopped: make(chan struct{}),
		ckpt: ckpt, dirty: make(chan struct{}, 1), ckptStopped: make(chan struct{})}
	go w.loop()
	if ckpt != nil {
		go w.checkpoints()
	} else {
		close(w.ckptStopped)
	}
	return w
}

// checkpoints runs a passive checkpoint (one that never blocks the writer
// or the readers) after commits, at most every checkpointEvery. Its
// errors are ignored: the writer's automatic checkpoint remains the
// backstop.
func (w *sqliteWriter) checkpoints() {
	defer close(w.ckptStopped)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-w.dirty:
		case <-w.quit:
			return
		}
		// A failed passive checkpoint is left to SQLite's own automatic
		// checkpoint, the backstop.
		_, _ = w.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		t.Reset(checkpointEvery)
		select {
		case <-t.C:
		case <-w.quit:
			return
		}
	}
}

// do runs fn in the writer's next transaction and returns its error, or
// the commit's. fn's results are valid only when do returns nil. fn runs on
// the writer goroutine with a context that is not cancelled: cancelling a
// statement would roll back the whole batch, so a request whose ctx ends
// before it starts is skipped instead.
func (w *sqliteWriter) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	r := &writeRequest{ctx: ctx, run: fn, done: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-w.quit:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once taken, a request is always answered, and promptly: it may be
	// committed, so the caller waits for the outcome even when ctx ends.
	return <-r.done
}

// close stops the writer after its current batch.
func (w *sqliteWriter) close() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.stopped
	<-w.ckptStopped
}

func (w *sqliteWriter) loop() {
	defer close(w.stopped)
	batch := make([]*writeRequest, 0, maxWriteBatch)
	errs := make([]error, 0, maxWriteBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-w.quit:
			return
		}
	fill:
		for len(batch) < maxWriteBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		errs = w.commit(batch, errs[:0])
		select {
		case w.dirty <- struct{}{}:
		default:
		}
		for i, r := range batch {
			r.done <- errs[i]
			batch[i] = nil
		}
	}
}

// commit runs batch in one transaction and returns each request's error.
func (w *sqliteWriter) commit(batch []*writeRequest, errs []error) []error {
	for range batch {
		errs = append(errs, nil)
	}
	fail := func(err error) []error {
		err = sqliteErr(err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	ctx := context.Background()
	tx, err := w.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return fail(err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op (sql.ErrTxDone)
	if len(batch) == 1 {
		// Alone in its transaction, a request needs no savepoint: its
		// failure rolls the transaction back.
		r := batch[0]
		if err := r.ctx.Err(); err != nil {
			errs[0] = err
			return errs
		}
		if err := r.run(context.WithoutCancel(r.ctx), tx); err != nil {
			errs[0] = err
			return errs
		}
		if err := tx.Commit(); err != nil {
			return fail(err)
		}
		return errs
	}
	ran := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT request`); err != nil {
			return fail(err)
		}
		if err := r.run(context.WithoutCancel(r.ctx), tx); err != nil {
			errs[i] = err
			// Some errors (SQLITE_FULL, IOERR, BUSY) end the transaction;
			// then ROLLBACK TO fails and the whole batch fails with it.
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO request`); rerr != nil {
				return fail(fmt.Errorf("%w (after %w)", rerr, err))
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE request`); err != nil {
			return fail(err)
		}
		ran++
	}
	if ran == 0 {
		return errs
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return errs
}
