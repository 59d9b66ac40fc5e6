package store

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Page tokens are opaque to callers: base64url of a versioned, '|'-separated
// sort key of the last item of the previous page. The key's last field may
// hold any text, so it is split off last.

const (
	memberTokenVersion  = "m1"
	messageTokenVersion = "g1"
)

// memberCursor is the sort key of a member listing: role, join time, user id.
type memberCursor struct {
	role     Role
	joinedAt time.Time
	userID   string
}

// firstMemberCursor sorts before every member: no role is smaller than 0.
var firstMemberCursor = memberCursor{role: 0, joinedAt: time.Unix(0, 0).UTC()}

func encodeMemberToken(m Member) string {
	raw := memberTokenVersion + "|" + strconv.Itoa(int(m.Role)) + "|" +
		strconv.FormatInt(m.JoinedAt.UnixMicro(), 10) + "|" + m.UserID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeMemberToken(token string) (memberCursor, error) {
	if token == "" {
		return firstMemberCursor, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return memberCursor{}, fmt.Errorf("%w: %v", ErrInvalidPageToken, err)
	}
	parts := strings.SplitN(string(raw), "|", 4)
	if len(parts) != 4 || parts[0] != memberTokenVersion {
		return memberCursor{}, fmt.Errorf("%w: not a member listing token", ErrInvalidPageToken)
	}
	role, err := strconv.Atoi(parts[1])
	if err != nil || (Role(role) != RoleOwner && Role(role) != RoleMember) {
		return memberCursor{}, fmt.Errorf("%w: bad role", ErrInvalidPageToken)
	}
	micros, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return memberCursor{}, fmt.Errorf("%w: bad time", ErrInvalidPageToken)
	}
	return memberCursor{role: Role(role), joinedAt: time.UnixMicro(micros).UTC(), userID: parts[3]}, nil
}

func encodeMessageToken(seq int64) string {
	raw := messageTokenVersion + "|" + strconv.FormatInt(seq, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeMessageToken returns the sequence number after which the page
// starts; 0 for the first page, as sequences start at 1.
func decodeMessageToken(token string) (int64, error) {
	if token == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidPageToken, err)
	}
	version, seqText, ok := strings.Cut(string(raw), "|")
	if !ok || version != messageTokenVersion {
		return 0, fmt.Errorf("%w: not a message listing token", ErrInvalidPageToken)
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 0 {
		return 0, fmt.Errorf("%w: bad sequence", ErrInvalidPageToken)
	}
	return seq, nil
}
