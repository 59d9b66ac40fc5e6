package chatserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
)

// authenticator accepts a request only with "Authorization: Bearer <token>"
// for one of the configured tokens. It compares SHA-256 digests in constant
// time, so neither a token's content nor its length shows in the timing.
//
// It is HTTP middleware in front of the service's Connect handler, not a
// Connect interceptor: it answers before anything reads, decompresses or
// decodes the request's body. Health checks and /metrics do not pass
// through it.
type authenticator struct {
	digests  [][sha256.Size]byte
	errors   *connect.ErrorWriter
	rejected prometheus.Counter
}

func newAuthenticator(tokens []string, errors *connect.ErrorWriter, rejected prometheus.Counter) *authenticator {
	a := &authenticator{digests: make([][sha256.Size]byte, len(tokens)), errors: errors, rejected: rejected}
	for i, t := range tokens {
		a.digests[i] = sha256.Sum256([]byte(t))
	}
	return a
}

// errUnauthenticated is deliberately the same for a missing and a wrong
// token.
var errUnauthenticated = errors.New("missing or invalid bearer token")

// allowed reports whether h carries one of the tokens.
func (a *authenticator) allowed(h http.Header) bool {
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	ok = ok && strings.EqualFold(scheme, "Bearer") && token != ""
	digest := sha256.Sum256([]byte(token))
	match := 0
	for i := range a.digests {
		match |= subtle.ConstantTimeCompare(digest[:], a.digests[i][:])
	}
	return ok && match == 1
}

// wrap returns next behind the token check. A request without a valid
// token gets unauthenticated in its own protocol's shape (Connect: HTTP
// 401 with a JSON error; gRPC and gRPC-Web: grpc-status 16) and a
// WWW-Authenticate response header, and its body is never read: an
// HTTP/1.1 connection is closed after the answer rather than drained.
func (a *authenticator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.allowed(r.Header) {
			next.ServeHTTP(w, r)
			return
		}
		a.rejected.Inc()
		// A header, not error metadata: gRPC sends error metadata as
		// trailers, where HTTP/2 forbids WWW-Authenticate (net/http logged
		// "ignoring invalid trailer" for every rejected gRPC call).
		w.Header().Set("WWW-Authenticate", `Bearer realm="chat"`)
		if r.ProtoMajor == 1 && r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
		_ = a.errors.Write(w, r, connect.NewError(connect.CodeUnauthenticated, errUnauthenticated))
	})
}
