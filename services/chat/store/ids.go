package store

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

// idEncoding is lower-case base32 without padding: ids stay within the
// identifier charset of the API and read well in logs. Its alphabet is in
// ASCII order, so that the text of ids sorts as their bytes do.
var idEncoding = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// idBytes is the length of an id before encoding: 128 bits, 26 characters.
const idBytes = 16

// newID returns prefix followed by 128 random bits in base32, for example
// "grp_" and 26 characters.
func newID(prefix string) string {
	var b [idBytes]byte
	// crypto/rand.Read never returns an error; it crashes the program when
	// the system's random source fails.
	_, _ = rand.Read(b[:])
	return encodeID(prefix, b)
}

// newTimeOrderedID returns prefix followed by the current Unix time in
// milliseconds (48 bits) and 80 random bits, in base32. Ids made close in
// time sort close together, so a unique index on them takes new entries
// on its last pages instead of on a random page each: a batch of inserts
// then writes a few index pages, not one per row.
func newTimeOrderedID(prefix string) string {
	var b [idBytes]byte
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(time.Now().UnixMilli()))
	copy(b[:6], ms[2:])
	_, _ = rand.Read(b[6:])
	return encodeID(prefix, b)
}

func encodeID(prefix string, b [idBytes]byte) string {
	var sb strings.Builder
	sb.Grow(len(prefix) + idEncoding.EncodedLen(len(b)))
	sb.WriteString(prefix)
	sb.WriteString(idEncoding.EncodeToString(b[:]))
	return sb.String()
}

// newGroupID returns a new group id.
func newGroupID() string { return newID("grp_") }

// newMessageID returns a new message id, ordered by time.
func newMessageID() string { return newTimeOrderedID("msg_") }
