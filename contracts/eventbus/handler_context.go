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

	once   sync.Once // starts the timer, or (release) stops it from starting
	closed sync.Once // closes done
	done   chan struct{}
	timer  *time.Timer
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

// Done returns a channel that is closed at the deadline; nil, never
// closed, once the handler has returned without asking for it.
func (c *handlerContext) Done() <-chan struct{} {
	c.once.Do(c.start)
	return c.done
}

func (c *handlerContext) start() {
	c.done = make(chan struct{})
	if d := time.Until(c.deadline); d > 0 {
		c.timer = time.AfterFunc(d, c.expire)
	} else {
		c.expire()
	}
}

// expire closes done, once.
func (c *handlerContext) expire() { c.closed.Do(func() { close(c.done) }) }

// AfterFunc arranges for f to run, in its own goroutine, once the deadline
// has passed, and returns a function that stops that if it has not
// happened. The context package uses it for the contexts derived from this
// one (context.WithTimeout, WithCancel), instead of starting a goroutine
// that waits on Done for each of them.
func (c *handlerContext) AfterFunc(f func()) (stop func() bool) {
	if c.Done() == nil {
		return func() bool { return true } // released: never done, f never runs
	}
	// expire first: f's timer may fire before Done's, and f reads Err.
	return time.AfterFunc(time.Until(c.deadline), func() { c.expire(); f() }).Stop
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
