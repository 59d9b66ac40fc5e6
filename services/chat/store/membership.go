package store

import "time"

// Membership states as stored in group_members.state and prev_state.
const (
	stateJoined = "joined"
	stateLeft   = "left"
	// stateNone is the prev_state of a freshly inserted row.
	stateNone = "none"
)

// Both stores apply a join or leave with one upsert statement whose update
// branch runs only when the event is newer than the row and the row is not
// the owner's. The statement saves the row's previous state in prev_state
// and returns it, which tells whether the membership changed. When it
// returns no row, the event was a repeat, older than the row, or about the
// owner, or the group does not exist; a read of the row then tells which.

// joinOutcome returns the outcome of a join that the upsert applied, given
// the state it replaced.
func joinOutcome(prevState string) MembershipChange {
	return MembershipChange{Applied: prevState != stateJoined, IsMember: true}
}

// leaveOutcome returns the outcome of a leave that the upsert applied, given
// the state it replaced.
func leaveOutcome(prevState string) MembershipChange {
	return MembershipChange{Applied: prevState == stateJoined, IsMember: false}
}

// unappliedOutcome returns the outcome of an event that the upsert did not
// apply, given the row's current state and role. hasRow is false when the
// group has no row for the user. A leave that names the owner fails.
func unappliedOutcome(leave bool, hasRow bool, state string, role Role) (MembershipChange, error) {
	if leave && hasRow && role == RoleOwner {
		return MembershipChange{}, ErrOwnerImmutable
	}
	return MembershipChange{IsMember: hasRow && state == stateJoined}, nil
}

// dbTime truncates t to the microsecond precision both stores keep and
// moves it to UTC, so that both compare event times alike.
func dbTime(t time.Time) time.Time {
	return t.Truncate(time.Microsecond).UTC()
}

// now returns the current time as the stores keep it.
func now() time.Time { return dbTime(time.Now()) }
