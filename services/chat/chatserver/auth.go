package chatserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// authInterceptor accepts a call only with "Authorization: Bearer <token>"
// for one of the configured tokens. It compares SHA-256 digests in constant
// time, so neither a token's content nor its length shows in the timing.
// Health checks and /metrics do not pass through it.
type authInterceptor struct {
	digests [][sha256.Size]byte
}

func newAuthInterceptor(tokens []string) *authInterceptor {
	a := &authInterceptor{digests: make([][sha256.Size]byte, len(tokens))}
	for i, t := range tokens {
		a.digests[i] = sha256.Sum256([]byte(t))
	}
	return a
}

// errUnauthenticated is deliberately the same for a missing and a wrong
// token.
var errUnauthenticated = errors.New("missing or invalid bearer token")

func (a *authInterceptor) check(h http.Header) error {
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	ok = ok && strings.EqualFold(scheme, "Bearer") && token != ""
	digest := sha256.Sum256([]byte(token))
	match := 0
	for i := range a.digests {
		match |= subtle.ConstantTimeCompare(digest[:], a.digests[i][:])
	}
	if ok && match == 1 {
		return nil
	}
	err := connect.NewError(connect.CodeUnauthenticated, errUnauthenticated)
	err.Meta().Set("WWW-Authenticate", `Bearer realm="chat"`)
	return err
}

// WrapUnary checks the token of a unary call.
func (a *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !req.Spec().IsClient {
			if err := a.check(req.Header()); err != nil {
				return nil, err
			}
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient leaves clients alone.
func (a *authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler checks the token of a streaming call.
func (a *authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := a.check(conn.RequestHeader()); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
