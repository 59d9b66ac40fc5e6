package store

import (
	"strings"
	"testing"
	"time"
)

// TestTimeOrderedIDs checks that message ids made in later milliseconds
// sort after earlier ones as text, keep the id format, and differ within
// one millisecond.
func TestTimeOrderedIDs(t *testing.T) {
	first := newMessageID()
	same := newMessageID()
	start := time.Now().UnixMilli()
	for time.Now().UnixMilli() <= start+1 {
		// Wait on the clock, not a fixed sleep, for the next millisecond.
	}
	later := newMessageID()
	if first == same {
		t.Errorf("two ids alike: %s", first)
	}
	if first >= later || same >= later {
		t.Errorf("ids do not sort in time order: %s, %s, then %s", first, same, later)
	}
	for _, id := range []string{first, later, newGroupID()} {
		body := id[strings.IndexByte(id, '_')+1:]
		if len(body) != 26 || strings.Trim(body, "234567abcdefghijklmnopqrstuvwxyz") != "" {
			t.Errorf("id %q: want a prefix and 26 lower-case base32 characters", id)
		}
	}
}
