package store

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The page token fuzz targets feed arbitrary strings to the token decoders,
// as a caller of ListGroupMembers or ListGroupMessages may. Run one with
//
//	go test -run '^$' -fuzz '^FuzzMemberToken$' -fuzztime 60s ./services/chat/store/
//
// Seeds: the tokens of the members in contracts/samples (user ids and
// event times of the seed events), plus malformed ones.

// sampleMembers returns the members the seed samples make: the creator as
// owner, the joining user as member.
func sampleMembers(f *testing.F) []Member {
	f.Helper()
	var members []Member
	for _, s := range []struct{ file, user, at string }{
		{"activity.created/seed.json", "creator_id", "created_at"},
		{"activity.member.joined/seed.json", "user_id", "joined_at"},
		{"activity.member.left/fractional_seconds.json", "user_id", "left_at"},
	} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "contracts", "samples", s.file))
		if err != nil {
			f.Fatal(err)
		}
		var ev map[string]string
		if err := json.Unmarshal(data, &ev); err != nil {
			f.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339Nano, ev[s.at])
		if err != nil {
			f.Fatal(err)
		}
		role := RoleMember
		if s.user == "creator_id" {
			role = RoleOwner
		}
		members = append(members, Member{UserID: ev[s.user], Role: role, JoinedAt: at})
	}
	return members
}

func FuzzMemberToken(f *testing.F) {
	for _, m := range sampleMembers(f) {
		f.Add(encodeMemberToken(m))
	}
	for _, s := range []string{"", "garbage", "bTF8MXwwfA", "bTF8OXwxfHU", "ZzF8MQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := decodeMemberToken(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidPageToken) {
				t.Fatalf("error %v does not match ErrInvalidPageToken", err)
			}
			return
		}
		if token == "" {
			return
		}
		again, err := decodeMemberToken(encodeMemberToken(Member{UserID: c.userID, Role: c.role, JoinedAt: c.joinedAt}))
		if err != nil || again != c {
			t.Fatalf("cursor %+v does not survive its own token: %+v, %v", c, again, err)
		}
	})
}

func FuzzMessageToken(f *testing.F) {
	f.Add(encodeMessageToken(1))
	f.Add(encodeMessageToken(1 << 62))
	for _, s := range []string{"", "garbage", "ZzF8LTE", "bTF8MQ"} {
		f.Add(s)
	}
	for _, m := range sampleMembers(f) {
		f.Add(encodeMemberToken(m)) // a member token is not a message token
	}
	f.Fuzz(func(t *testing.T, token string) {
		seq, err := decodeMessageToken(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidPageToken) {
				t.Fatalf("error %v does not match ErrInvalidPageToken", err)
			}
			return
		}
		if seq < 0 {
			t.Fatalf("sequence %d is negative", seq)
		}
		if token == "" {
			return
		}
		if again, err := decodeMessageToken(encodeMessageToken(seq)); err != nil || again != seq {
			t.Fatalf("sequence %d does not survive its own token: %d, %v", seq, again, err)
		}
	})
}
