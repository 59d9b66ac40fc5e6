package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// maxWriteBatch bounds how many write requests the SQLite writer commits in
// one transaction.
const maxWriteBatch = 256

// errStoreClosed is returned by writes submitted after Close.
var errStoreClosed = errors.New("store: closed")

// writeRequest is one write waiting for the SQLite writer. run does the
// request's statements in the writer's transaction; done receives its
// outcome once the transaction is committed (or failed). state tells
// whether the writer took the request or its caller gave up on it first.
type writeRequest struct {
	ctx   context.Context
	run   func(ctx context.Context, tx *sql.Tx) error
	done  chan error
	state atomic.Int32
}

// States of a writeRequest.
const (
	requestQueued    = 0
	requestTaken     = 1
	requestAbandoned = 2
)

// take marks r as taken by the writer; it reports false when the caller
// has abandoned it.
func (r *writeRequest) take() bool { return r.state.CompareAndSwap(requestQueued, requestTaken) }

// sqliteWriter is the one goroutine that writes to a SQLite database.
// Callers append their requests to a queue; the writer takes all that are
// waiting when it becomes free (at most maxWriteBatch), runs each one
// inside a SAVEPOINT of one transaction and commits them together: one
// commit (and one set of WAL frames) for many requests, and the writer
// connection is held only by this goroutine, never across a caller's
// scheduling. A request whose statements fail is rolled back to its
// savepoint and gets its own error; the others of its batch are
// unaffected.
//
// Before it commits a batch the writer yields the processor while that
// brings more requests: a caller that is runnable but has not been
// scheduled yet (typically one the previous commit just answered) joins
// this batch instead of making the next commit on its own. When nothing
// else is runnable the yield returns at once, so an idle service pays
// nothing for it.
type sqliteWriter struct {
	db *sql.DB

	mu     sync.Mutex
	queue  []*writeRequest // guarded by mu
	closed bool            // guarded by mu
	wake   chan struct{}   // capacity 1: the queue is not empty

	quit    chan struct{}
	stopped chan struct{}

	// savepoint, rollbackTo and release are the statements around each
	// request of a batch, prepared once.
	savepoint, rollbackTo, release *sql.Stmt

	// ckpt, when not nil, is a connection of its own that checkpoints the
	// WAL after commits (at most every checkpointEvery). Under load it
	// keeps the checkpointed part of the WAL close behind the writer, so
	// that SQLite's automatic checkpoint, which the writer runs inside a
	// commit when the WAL reaches 1000 pages (copying pages and syncing
	// the database file while every request waits), finds little left to
	// copy. dirty tells it that the writer committed.
	ckpt        *sql.DB
	dirty       chan struct{}
	ckptStopped chan struct{}
}

// maxGatherYields bounds how many times the writer yields to gather one
// batch.
const maxGatherYields = 4

// checkpointEvery is the least time between two background checkpoints:
// short, so that they keep up with the writer (a checkpoint at 100 ms
// intervals fell behind by several automatic checkpoints), but not zero,
// so that one checkpoint copies the pages of a few commits at once.
const checkpointEvery = 2 * time.Millisecond

// newSQLiteWriter prepares the writer's statements on db and starts the
// writer and, when ckpt is not nil, its checkpointer.
func newSQLiteWriter(ctx context.Context, db, ckpt *sql.DB) (*sqliteWriter, error) {
	w := &sqliteWriter{db: db, wake: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{}),
		ckpt: ckpt, dirty: make(chan struct{}, 1), ckptStopped: make(chan struct{})}
	for stmt, query := range map[**sql.Stmt]string{
		&w.savepoint:  `SAVEPOINT request`,
		&w.rollbackTo: `ROLLBACK TO request`,
		&w.release:    `RELEASE request`,
	} {
		var err error
		if *stmt, err = db.PrepareContext(ctx, query); err != nil {
			return nil, errors.Join(fmt.Errorf("open sqlite: prepare: %w", err), w.closeStmts())
		}
	}
	go w.loop()
	if ckpt != nil {
		go w.checkpoints()
	} else {
		close(w.ckptStopped)
	}
	return w, nil
}

// closeStmts closes the writer's prepared statements.
func (w *sqliteWriter) closeStmts() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{w.savepoint, w.rollbackTo, w.release} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
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
// before the writer takes it is abandoned instead.
func (w *sqliteWriter) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeRequest{ctx: ctx, run: fn, done: make(chan error, 1)}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errStoreClosed
	}
	w.queue = append(w.queue, r)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(requestQueued, requestAbandoned) {
			return ctx.Err()
		}
		// Taken: it may be committed, so the caller waits for the
		// outcome, which comes promptly.
		return <-r.done
	}
}

// close stops the writer once the requests queued so far are done; later
// ones fail with errStoreClosed.
func (w *sqliteWriter) close() error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	if !already {
		close(w.quit)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	<-w.stopped
	<-w.ckptStopped
	return w.closeStmts()
}

func (w *sqliteWriter) loop() {
	defer close(w.stopped)
	batch := make([]*writeRequest, 0, maxWriteBatch)
	errs := make([]error, 0, maxWriteBatch)
	for {
		var ok bool
		if batch, ok = w.gather(batch[:0]); !ok {
			return
		}
		if len(batch) == 0 {
			continue
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

// gather waits for requests and returns the next batch, the requests its
// callers have not abandoned; ok is false when the writer is closed and
// nothing is left to do.
func (w *sqliteWriter) gather(batch []*writeRequest) (_ []*writeRequest, ok bool) {
	for {
		n, closed := w.takeQueued(&batch)
		if n > 0 {
			break
		}
		if closed {
			return batch, false
		}
		<-w.wake
	}
	for range maxGatherYields {
		runtime.Gosched()
		if n, _ := w.takeQueued(&batch); n == 0 {
			break
		}
	}
	return batch, true
}

// takeQueued moves the queued requests, up to maxWriteBatch in the batch,
// to *batch, skipping abandoned ones. It returns how many it took from the
// queue and whether the writer is closed.
func (w *sqliteWriter) takeQueued(batch *[]*writeRequest) (n int, closed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n = min(len(w.queue), maxWriteBatch-len(*batch))
	for _, r := range w.queue[:n] {
		if r.take() {
			*batch = append(*batch, r)
		}
	}
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	return n, w.closed
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
		if _, err := tx.StmtContext(ctx, w.savepoint).ExecContext(ctx); err != nil {
			return fail(err)
		}
		if err := r.run(context.WithoutCancel(r.ctx), tx); err != nil {
			errs[i] = err
			// Some errors (SQLITE_FULL, IOERR, BUSY) end the transaction;
			// then ROLLBACK TO fails and the whole batch fails with it.
			if _, rerr := tx.StmtContext(ctx, w.rollbackTo).ExecContext(ctx); rerr != nil {
				return fail(fmt.Errorf("%w (after %w)", rerr, err))
			}
		}
		if _, err := tx.StmtContext(ctx, w.release).ExecContext(ctx); err != nil {
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
