package eventbus

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// SetForwardBackoff sets the forwarder's first retry delay until the
// returned function restores it. Call it before a router runs.
func SetForwardBackoff(d time.Duration) (restore func()) {
	old := forwardBackoff
	forwardBackoff = d
	return func() { forwardBackoff = old }
}

// PullUnreserved sends, for r's running subscription to subject, a pull
// request for n messages that reserves no slot, as a pull request the
// subscription has given up on would be: what the server sends for it
// arrives late.
func PullUnreserved(r *Router, subject string, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.subs {
		if s.subject == subject && s.inboxSub != nil {
			body := fmt.Appendf(nil, `{"batch":%d,"expires":%d}`, n, time.Second.Nanoseconds())
			return s.nc.PublishRequest(s.nextSubject, s.replyPrefix+strconv.Itoa(n), body)
		}
	}
	return errors.New("no running subscription to " + subject)
}

// LookAhead is how many messages a subscription with the given
// concurrency asks for beyond its free handlers.
var LookAhead = lookAhead
