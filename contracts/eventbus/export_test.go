package eventbus

import "time"

// SetForwardBackoff sets the forwarder's first retry delay until the
// returned function restores it. Call it before a router runs.
func SetForwardBackoff(d time.Duration) (restore func()) {
	old := forwardBackoff
	forwardBackoff = d
	return func() { forwardBackoff = old }
}
