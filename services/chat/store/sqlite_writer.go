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

// sqliteRequest is a request to the SQLite writer.
type sqliteRequest = writeRequest[*sql.Tx]

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
// The writer gathers its batches as writeQueue.gather says.
type sqliteWriter struct {
	*writeQueue[*sql.Tx]
	db *sql.DB

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

// checkpointEvery is the least time between two background checkpoints:
// short, so that they keep up with the writer (a checkpoint at 100 ms
// intervals fell behind by several automatic checkpoints), but not zero,
// so that one checkpoint copies the pages of a few commits at once.
const checkpointEvery = 2 * time.Millisecond

// newSQLiteWriter prepares the writer's statements on db and starts the
// writer and, when ckpt is not nil, its checkpointer.
func newSQLiteWriter(ctx context.Context, db, ckpt *sql.DB) (*sqliteWriter, error) {
	w := &sqliteWriter{writeQueue: newWriteQueue[*sql.Tx](maxWriteBatch), db: db, stopped: make(chan struct{}),
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
		case <-w.closing:
			return
		}
		// A failed passive checkpoint is left to SQLite's own automatic
		// checkpoint, the backstop.
		_, _ = w.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
		t.Reset(checkpointEvery)
		select {
		case <-t.C:
		case <-w.closing:
			return
		}
	}
}

// close stops the writer once the requests queued so far are done; later
// ones fail with errStoreClosed.
func (w *sqliteWriter) close() error {
	w.writeQueue.close()
	<-w.stopped
	<-w.ckptStopped
	return w.closeStmts()
}

func (w *sqliteWriter) loop() {
	defer close(w.stopped)
	batch := make([]*sqliteRequest, 0, maxWriteBatch)
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
		answer(batch, errs)
	}
}

// commit runs batch in one transaction and returns each request's error.
func (w *sqliteWriter) commit(batch []*sqliteRequest, errs []error) []error {
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
	// The transaction's own handles on the statements around each request,
	// once per batch.
	savepoint, release := tx.StmtContext(ctx, w.savepoint), tx.StmtContext(ctx, w.release)
	ran := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := savepoint.ExecContext(ctx); err != nil {
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
		if _, err := release.ExecContext(ctx); err != nil {
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
