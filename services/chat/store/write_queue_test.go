package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/activitychat/chat/services/internal/testwait"
)

// waitQueued waits until n requests wait in q.
func waitQueued[T any](t *testing.T, q *writeQueue[T], n int) {
	t.Helper()
	testwait.Eventually(t, 10*time.Second, func() error {
		q.mu.Lock()
		defer q.mu.Unlock()
		if len(q.queue) != n {
			return fmt.Errorf("%d requests queued, want %d", len(q.queue), n)
		}
		return nil
	})
}

// waitClosed waits until q is closed.
func waitClosed[T any](t *testing.T, q *writeQueue[T]) {
	t.Helper()
	testwait.Eventually(t, 10*time.Second, func() error {
		q.mu.Lock()
		defer q.mu.Unlock()
		if !q.closed {
			return testwait.ErrNotYet
		}
		return nil
	})
}

// blockWorkers holds the workers of q with requests that wait until
// release is closed, and returns once they all run, so that later requests
// queue behind them. wait waits for the blocking requests' outcomes.
func blockWorkers[T any](t *testing.T, q *writeQueue[T], workers int) (release chan struct{}, wait func()) {
	t.Helper()
	release = make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		// One at a time: a worker that is free takes each into a batch
		// of its own.
		running := make(chan struct{})
		wg.Go(func() {
			err := q.do(context.Background(), "", func(context.Context, T) error {
				close(running)
				<-release
				return nil
			})
			if err != nil {
				t.Errorf("blocking request: %v", err)
			}
		})
		<-running
	}
	return release, wg.Wait
}
