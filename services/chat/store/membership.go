package store

import "time"

// Membership states as stored in group_members.state and prev_state.
const (
	stateJoined = "joined"
	stateLeft   = "left"
)

// Both stores apply a join or leave with one upsert statement whose update
// branch runs only when the event beats the row (beatsSQL) and the row is
// not the owner's. The statement saves the row's previous state in
// prev_state and returns it, which tells whether the membership changed.
// When it returns no row, the event did not beat the row, was about the
// owner, or the group does not exist; a read of the row then tells which.

// beatsSQL is the condition, in both dialects, under which the event in
// excluded replaces the row o of group_members or pending_members: a later
// time, or the same time with a leave replacing a join.
const beatsSQL = `((o.event_time, o.event_nanos) < (excluded.event_time, excluded.event_nanos)
	OR ((o.event_time, o.event_nanos) = (excluded.event_time, excluded.event_nanos)
		AND o.state = 'joined' AND excluded.state = 'left'))`

// noticeTextSQL renders a notice's text in SQL, in both dialects: $text
// with "{group_name}" replaced by the name of the group g, cut to the
// longest message the API accepts.
func noticeTextSQL(text string) string {
	return `substr(replace(` + text + `, '{group_name}', g.name), 1, 4000)`
}

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

// outcome returns the outcome of an event that the upsert applied.
func outcome(leave bool, prevState string) MembershipChange {
	if leave {
		return leaveOutcome(prevState)
	}
	return joinOutcome(prevState)
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

// state returns the state an event of this kind sets.
func eventState(leave bool) string {
	if leave {
		return stateLeft
	}
	return stateJoined
}

// splitTime returns t in UTC cut to microseconds, the precision of the time
// columns, and the nanoseconds cut off, kept in event_nanos.
func splitTime(t time.Time) (micros time.Time, nanos int16) {
	t = t.UTC()
	m := t.Truncate(time.Microsecond)
	return m, int16(t.Sub(m))
}

// pendingChange is a membership change kept for a group not created yet.
type pendingChange struct {
	userID    string
	state     string
	eventTime time.Time // microseconds
	nanos     int16
	notice    Notice
}

// before orders pending changes by event time, then user.
func (p pendingChange) before(q pendingChange) bool {
	if !p.eventTime.Equal(q.eventTime) {
		return p.eventTime.Before(q.eventTime)
	}
	if p.nanos != q.nanos {
		return p.nanos < q.nanos
	}
	return p.userID < q.userID
}

// nullKey returns an idempotency key for the database: nil (NULL) when
// empty, so that messages without a key never conflict.
func nullKey(key string) any {
	if key == "" {
		return nil
	}
	return key
}

// dbTime truncates t to the microsecond precision both stores keep and
// moves it to UTC, so that both compare event times alike.
func dbTime(t time.Time) time.Time {
	return t.Truncate(time.Microsecond).UTC()
}

// now returns the current time as the stores keep it.
func now() time.Time { return dbTime(time.Now()) }
