package store

import (
	"fmt"
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
