package eventbus

import (
	"sync"
	"time"
)

// gate stops a subscription while its dependency is unavailable and keeps
// the deliveries it holds meanwhile. The keeper keeps them alive; the probe
// takes one at a time to learn whether the dependency is back.
type gate struct {
	mu     sync.Mutex
	err    error         // why the gate is closed; nil while open
	opened chan struct{} // closed while the gate is open
	held   []*delivery   // deliveries held while closed
}

func newGate() *gate {
	g := &gate{opened: make(chan struct{})}
	close(g.opened)
	return g
}

// close closes the gate for err and reports whether it was open, in which
// case the caller starts the probe.
func (g *gate) close(err error) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		g.err = err
		return false
	}
	g.err = err
	g.opened = make(chan struct{})
	return true
}

// open opens the gate and returns the messages held meanwhile.
func (g *gate) open() []*delivery {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		g.err = nil
		close(g.opened)
	}
	held := g.held
	g.held = nil
	return held
}

// hold keeps m while the gate is closed and reports whether it did; when the
// gate is open the caller handles m itself.
func (g *gate) hold(m *delivery) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		return false
	}
	m.due = time.Time{}
	g.held = append(g.held, m)
	return true
}

// isOpen reports whether the gate is open.
func (g *gate) isOpen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err == nil
}

// openCh returns a channel that is closed while the gate is open.
func (g *gate) openCh() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.opened
}

// pop takes the oldest held message, or nil.
func (g *gate) pop() *delivery {
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
func (g *gate) pushFront(m *delivery) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = append([]*delivery{m}, g.held...)
}

// each calls f for every held message.
func (g *gate) each(f func(*delivery)) {
	g.mu.Lock()
	held := append([]*delivery(nil), g.held...)
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
