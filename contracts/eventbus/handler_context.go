package eventbus

import (
	"context"
	"sync"
	"time"
)

// handlerContext is the context a handler gets: not cancelled by shutdown,
// done at a deadline. Unlike context.WithDeadline it starts its timer only
// when somebody asks for Done, so a handler that never waits on its context
// costs no timer.
type handlerContext struct {
	context.Context // values only: never done
	deadline        time.Time
	traceparent     string // the message's, if any: see Value

	once  sync.Once
	done  chan struct{}
	timer *time.Timer
}

func newHandlerContext(values context.Context, deadline time.Time, traceparent string) *handlerContext {
	return &handlerContext{Context: values, deadline: deadline, traceparent: traceparent}
}

// Value returns the message's traceparent for TraceparentFromContext (one
// allocation less than context.WithValue), and values' values otherwise.
func (c *handlerContext) Value(key any) any {
	if _, ok := key.(traceKey); ok && c.traceparent != "" {
		return c.traceparent
	}
	return c.Context.Value(key)
}

// Deadline returns the handler's deadline.
func (c *handlerContext) Deadline() (time.Time, bool) { return c.deadline, true }

// Done returns a channel that is closed at the deadline.
func (c *handlerContext) Done() <-chan struct{} {
	c.once.Do(func() {
		c.done = make(chan struct{})
		if d := time.Until(c.deadline); d > 0 {
			c.timer = time.AfterFunc(d, func() { close(c.done) })
		} else {
			close(c.done)
		}
	})
	return c.done
}

// Err returns context.DeadlineExceeded once the deadline has passed.
func (c *handlerContext) Err() error {
	select {
	case <-c.Done():
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// release stops the timer, if any, once the handler has returned.
func (c *handlerContext) release() {
	c.once.Do(func() {}) // no timer from now on
	if c.timer != nil {
		c.timer.Stop()
	}
}
