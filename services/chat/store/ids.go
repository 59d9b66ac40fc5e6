package store

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// idEncoding is lower-case base32 without padding: ids stay within the
// identifier charset of the API and read well in logs.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix followed by 128 random bits in base32, for example
// "grp_" and 26 characters.
func newID(prefix string) string {
	var b [16]byte
	// crypto/rand.Read never returns an error; it crashes the program when
	// the system's random source fails.
	_, _ = rand.Read(b[:])
	var sb strings.Builder
	sb.Grow(len(prefix) + idEncoding.EncodedLen(len(b)))
	sb.WriteString(prefix)
	sb.WriteString(idEncoding.EncodeToString(b[:]))
	return sb.String()
}

// newGroupID returns a new group id.
func newGroupID() string { return newID("grp_") }

// newMessageID returns a new message id.
func newMessageID() string { return newID("msg_") }
