package eventbus

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// Contexts derived from a handler's context, such as the timeout a client
// puts on each call, cost no goroutine each: the handler context tells the
// context package when it ends (AfterFunc), instead of a goroutine waiting
// on Done for every derived context.
func TestDerivedContextsStartNoGoroutine(t *testing.T) {
	hctx := newHandlerContext(context.Background(), time.Now().Add(time.Minute), "")
	defer hctx.release()
	before := runtime.NumGoroutine()
	cancels := make([]context.CancelFunc, 100)
	for i := range cancels {
		var ctx context.Context
		ctx, cancels[i] = context.WithTimeout(hctx, 30*time.Second)
		if ctx.Err() != nil {
			t.Fatal("a fresh derived context is done")
		}
	}
	if n := runtime.NumGoroutine() - before; n > 10 {
		t.Errorf("%d goroutines started for 100 derived contexts, want none", n)
	}
	for _, cancel := range cancels {
		cancel()
	}
}

// A derived context ends with the handler's deadline, with its error.
func TestDerivedContextEndsAtTheHandlersDeadline(t *testing.T) {
	hctx := newHandlerContext(context.Background(), time.Now().Add(50*time.Millisecond), "")
	defer hctx.release()
	ctx, cancel := context.WithTimeout(hctx, time.Minute)
	defer cancel()
	child, cancelChild := context.WithCancel(hctx)
	defer cancelChild()
	for _, c := range []context.Context{ctx, child} {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("derived context not done after the handler's deadline")
		}
		if c.Err() == nil {
			t.Fatal("derived context done without an error")
		}
	}
	if err := context.Cause(child); err != context.DeadlineExceeded {
		t.Errorf("cause %v, want %v", err, context.DeadlineExceeded)
	}
}

// BenchmarkDerivedTimeout is what a client's per-call timeout costs on a
// handler's context.
func BenchmarkDerivedTimeout(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		hctx := newHandlerContext(context.Background(), time.Now().Add(time.Minute), "")
		ctx, cancel := context.WithTimeout(hctx, 30*time.Second)
		_ = ctx.Err()
		cancel()
		hctx.release()
	}
}
