package store

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// errStoreClosed is returned by writes submitted after Close.
var errStoreClosed = errors.New("store: closed")

// writeRequest is one write waiting in a writeQueue. run does the
// request's statements in the transaction of a batch (T is the store's
// handle on it); done receives its outcome once the batch is committed (or
// failed). key orders a batch where that matters (see postgresBatcher).
// state tells whether a worker took the request or its caller gave up on
// it first.
type writeRequest[T any] struct {
	ctx   context.Context
	run   func(ctx context.Context, tx T) error
	key   string
	done  chan error
	state atomic.Int32
}

// States of a writeRequest.
const (
	requestQueued    = 0
	requestTaken     = 1
	requestAbandoned = 2
)

// take marks r as taken by a worker; it reports false when the caller has
// abandoned it.
func (r *writeRequest[T]) take() bool { return r.state.CompareAndSwap(requestQueued, requestTaken) }

// writeQueue is the queue between the callers of a store's writes and the
// worker goroutines that commit them in batches: the SQLite writer (one
// worker) and the PostgreSQL batcher (a few). Callers append to a
// mutex-guarded slice and wait for their outcome; a worker that becomes
// free takes all that is waiting, up to maxBatch.
type writeQueue[T any] struct {
	maxBatch int

	mu     sync.Mutex
	queue  []*writeRequest[T] // guarded by mu
	closed bool               // guarded by mu
	wake   chan struct{}      // capacity 1: the queue is not empty

	// closing is closed by close: the workers finish what is queued and
	// stop.
	closing chan struct{}
}

func newWriteQueue[T any](maxBatch int) *writeQueue[T] {
	return &writeQueue[T]{maxBatch: maxBatch, wake: make(chan struct{}, 1), closing: make(chan struct{})}
}

// maxGatherYields bounds how many times a worker yields to gather one
// batch.
const maxGatherYields = 4

// do queues a request for key that runs fn, and returns fn's error or its
// batch's. fn's results are valid only when do returns nil. fn runs on a
// worker goroutine with a context that is not cancelled: cancelling a
// statement would roll back the whole batch, so a request whose ctx ends
// before a worker takes it is abandoned instead.
func (q *writeQueue[T]) do(ctx context.Context, key string, fn func(ctx context.Context, tx T) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeRequest[T]{ctx: ctx, run: fn, key: key, done: make(chan error, 1)}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return errStoreClosed
	}
	q.queue = append(q.queue, r)
	q.mu.Unlock()
	q.signal()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(requestQueued, requestAbandoned) {
			return ctx.Err()
		}
		// Taken: it may be committed, so the caller waits for the
		// outcome.
		return <-r.done
	}
}

// signal wakes a worker.
func (q *writeQueue[T]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close makes later requests fail with errStoreClosed and tells the
// workers to stop once the queue is empty.
func (q *writeQueue[T]) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.closing)
	}
}

// gather waits for requests and returns the next batch, the requests their
// callers have not abandoned; ok is false when the queue is closed and
// empty.
//
// Before it returns a batch, gather yields the processor while that brings
// more requests: a caller that is runnable but has not been scheduled yet
// (typically one the previous commit just answered) joins this batch
// instead of making the next commit on its own. When nothing else is
// runnable the yield returns at once, so an idle service pays nothing.
func (q *writeQueue[T]) gather(batch []*writeRequest[T]) (_ []*writeRequest[T], ok bool) {
	for {
		n, closed := q.takeQueued(&batch)
		if n > 0 {
			break
		}
		if closed {
			return batch, false
		}
		select {
		case <-q.wake:
		case <-q.closing:
		}
	}
	for range maxGatherYields {
		runtime.Gosched()
		if n, _ := q.takeQueued(&batch); n == 0 {
			break
		}
	}
	return batch, true
}

// takeQueued moves the queued requests, up to maxBatch in the batch, to
// *batch, skipping abandoned ones. It returns how many it took from the
// queue and whether the queue is closed. When it leaves requests queued it
// wakes another worker for them.
func (q *writeQueue[T]) takeQueued(batch *[]*writeRequest[T]) (n int, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(len(q.queue), q.maxBatch-len(*batch))
	for _, r := range q.queue[:n] {
		if r.take() {
			*batch = append(*batch, r)
		}
	}
	rest := copy(q.queue, q.queue[n:])
	clear(q.queue[rest:])
	q.queue = q.queue[:rest]
	if rest > 0 {
		q.signal()
	}
	return n, q.closed
}

// answer gives each request of batch its outcome and clears batch.
func answer[T any](batch []*writeRequest[T], errs []error) {
	for i, r := range batch {
		r.done <- errs[i]
		batch[i] = nil
	}
}
