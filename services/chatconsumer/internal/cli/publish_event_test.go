package cli

import (
	"testing"

	"github.com/activitychat/chat/contracts/eventbus"
	activityv1 "github.com/activitychat/chat/gen/activity/v1"
)

// TestPublishEventNames checks the names and flags derived from a
// registry: the subject's last part when it is unique, else the subject;
// a flag per field, "_id" dropped.
func TestPublishEventNames(t *testing.T) {
	joined := activityv1.ActivityEvents[1]
	a, b := joined, joined
	a.Subject, b.Subject = "one.joined", "two.joined"
	events := newPublishEvents(append(eventbus.Registry{a, b}, activityv1.ActivityEvents[0]))
	var names []string
	for _, ev := range events {
		names = append(names, ev.name)
	}
	if got := names; len(got) != 3 || got[0] != "one.joined" || got[1] != "two.joined" || got[2] != "created" {
		t.Errorf("names = %q, want [one.joined two.joined created]", got)
	}
	var flags []string
	for _, f := range events[2].fields {
		flags = append(flags, f.flag)
	}
	if got := flags; len(got) != 4 || got[0] != "activity" || got[1] != "creator" || got[2] != "title" || got[3] != "created-at" {
		t.Errorf("flags of created = %q", got)
	}
	if !events[2].fields[0].required || events[2].fields[2].metavar() != "text" || !events[2].fields[3].time {
		t.Errorf("field rules not read from the descriptor: %+v", events[2].fields)
	}
}
