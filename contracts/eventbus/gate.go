package eventbus

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// gate stops a subscription while its dependency is unavailable and keeps
// the messages it holds meanwhile.
type gate struct {
	mu     sync.Mutex
	err    error           // why the gate is closed; nil while open
	opened chan struct{}   // closed while the gate is open
	closed chan struct{}   // closed while the gate is closed
	held   []jetstream.Msg // messages held while closed
}

func newGate() *gate {
	g := &gate{opened: make(chan struct{}), closed: make(chan struct{})}
	close(g.opened)
	return g
}

// close closes the gate for err and reports whether it was open, in which
// case the caller starts the hold loop.
func (g *gate) close(err error) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		g.err = err
		return false
	}
	g.err = err
	g.opened = make(chan struct{})
	close(g.closed)
	return true
}

// open opens the gate and returns the messages held meanwhile.
func (g *gate) open() []jetstream.Msg {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		g.err = nil
		close(g.opened)
		g.closed = make(chan struct{})
	}
	held := g.held
	g.held = nil
	return held
}

// hold keeps m while the gate is closed and reports whether it did; when the
// gate is open the caller handles m itself.
func (g *gate) hold(m jetstream.Msg) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		return false
	}
	g.held = append(g.held, m)
	return true
}

// pop takes the oldest held message, or nil.
func (g *gate) pop() jetstream.Msg {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.held) == 0 {
		return nil
	}
	m := g.held[0]
	g.held = g.held[1:]
	return m
}

// pushFront puts m back as the oldest held message.
func (g *gate) pushFront(m jetstream.Msg) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = append([]jetstream.Msg{m}, g.held...)
}

// each calls f for every held message.
func (g *gate) each(f func(jetstream.Msg)) {
	g.mu.Lock()
	held := append([]jetstream.Msg(nil), g.held...)
	g.mu.Unlock()
	for _, m := range held {
		f(m)
	}
}

// reason returns why the gate is closed, or nil while it is open.
func (g *gate) reason() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// wait blocks until the gate is open or ctx is done.
func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.opened
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closing returns a channel that is closed when the gate closes.
func (g *gate) closing() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}
