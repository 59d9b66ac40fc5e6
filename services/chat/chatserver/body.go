package chatserver

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// bodyDeadline gives each request d to deliver its body, counted from the
// end of its headers: a body that trickles in more slowly fails to read and
// the call ends, so a slow client holds neither a buffer nor a goroutine
// for longer than d. Once the body is read to its end the deadline is
// lifted, so that it does not limit the handler's own time. It works on
// HTTP/1.1 and on each HTTP/2 stream, whatever http.Server serves the
// handler.
func bodyDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody {
			if err := rc.SetReadDeadline(time.Now().Add(d)); err == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts its request's read deadline at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
