// Package store keeps the chat service's groups, memberships and messages.
//
// A Store is safe for concurrent use and every write is idempotent: a
// repeated call changes nothing and reports what is already stored. Two
// implementations exist, SQLite (the default, one file, no server) and
// PostgreSQL; Open picks one by driver name, and both pass the shared suite in
// package storetest.
//
// Membership is decided by event time. A store keeps one row per group and
// user with the user's state (joined or left) and the time of the latest event
// that set it, the deciding event. A join or leave applies only when it beats
// the deciding event: its event time is later, or equal and it is a leave
// while the row says joined. So events delivered in any order converge on
// the same state, and at equal times a leave wins. A leave for a user the
// store has never seen leaves a tombstone, so that an older join arriving
// afterwards is ignored. An event that does not beat the row, a repeat
// included, changes nothing. Event times are kept and compared at nanosecond
// precision in both stores (microseconds in the time column, the rest in
// event_nanos).
//
// A change addressed by activity before the activity's group exists is kept
// as pending, one per activity and user by the same rule, and CreateGroup
// applies the activity's pending changes in the transaction that creates
// the group, in event-time order. A change may carry a notice, which is
// stored in the transaction of the change exactly when the change applies:
// when a join makes a member or a leave ends a membership.
package store

import (
	"context"
	"errors"
	"time"
)

// Drivers that Open accepts.
const (
	// DriverSQLite selects the SQLite store; the DSN is a file path.
	DriverSQLite = "sqlite"
	// DriverPostgres selects the PostgreSQL store; the DSN is a libpq URL or
	// key/value string.
	DriverPostgres = "postgres"
)

// Page sizes of the list methods.
const (
	// DefaultPageSize is the page size when a caller asks for 0.
	DefaultPageSize = 100
	// MaxPageSize is the largest page size; larger requests get this many.
	MaxPageSize = 1000
)

var (
	// ErrNotFound means the group does not exist.
	ErrNotFound = errors.New("store: group not found")
	// ErrOwnerImmutable means the call would remove a group's owner, which
	// is never allowed.
	ErrOwnerImmutable = errors.New("store: the owner cannot be removed from the group")
	// ErrInvalidPageToken means a page token was not made by this store for
	// this kind of listing.
	ErrInvalidPageToken = errors.New("store: invalid page token")
	// ErrUnavailable wraps errors that are likely to go away when the call is
	// retried: a lost connection, a busy database, a serialization failure.
	ErrUnavailable = errors.New("store: database unavailable")
)

// Store keeps groups, memberships and messages.
type Store interface {
	// CreateGroup creates the group of g.ActivityID with g.OwnerID as its
	// owner and first member, and applies the activity's pending membership
	// changes in the same transaction, in event-time order, storing their
	// notices; a pending change about the owner is dropped. When the activity has a group already, it
	// returns that group and created = false; g's other fields are then
	// ignored.
	CreateGroup(ctx context.Context, g NewGroup) (group Group, created bool, err error)
	// GroupByID returns the group with the id, or ErrNotFound.
	GroupByID(ctx context.Context, groupID string) (Group, error)
	// GroupByActivityID returns the group of the activity, or ErrNotFound.
	GroupByActivityID(ctx context.Context, activityID string) (Group, error)
	// AddMember records that the user joined as of e.EventTime. It returns
	// ErrNotFound when e names the group by id and the group does not
	// exist; named by activity, the change is then kept as pending.
	AddMember(ctx context.Context, e MembershipEvent) (MembershipChange, error)
	// RemoveMember records that the user left as of e.EventTime, as
	// AddMember does. It returns ErrOwnerImmutable when the user is the
	// group's owner.
	RemoveMember(ctx context.Context, e MembershipEvent) (MembershipChange, error)
	// ListMembers returns one page of the group's current members, the
	// owner first, then by join time and user id. It returns ErrNotFound
	// when the group does not exist.
	ListMembers(ctx context.Context, groupID string, page Page) (members []Member, nextToken string, err error)
	// SendSystemMessage stores a system message. With a non-empty
	// IdempotencyKey a group stores one message per key: a repeat returns
	// the stored message and created = false. It returns ErrNotFound when
	// the group does not exist.
	SendSystemMessage(ctx context.Context, m NewMessage) (msg Message, created bool, err error)
	// ListMessages returns one page of the group's messages in the order
	// they were committed: a reader paging while others write never skips
	// a message. It returns ErrNotFound when the group does not
	// exist.
	ListMessages(ctx context.Context, groupID string, page Page) (messages []Message, nextToken string, err error)
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// Role is a member's role in a group.
type Role int

// Roles, in listing order.
const (
	// RoleOwner is the group's owner.
	RoleOwner Role = 1
	// RoleMember is an ordinary member.
	RoleMember Role = 2
)

// String returns the role's name.
func (r Role) String() string {
	switch r {
	case RoleOwner:
		return "owner"
	case RoleMember:
		return "member"
	}
	return "unknown"
}

// NewGroup is the input of CreateGroup.
type NewGroup struct {
	// ActivityID is the activity; it identifies the group for idempotency.
	ActivityID string
	// OwnerID is the owner and first member.
	OwnerID string
	// Name is the display name.
	Name string
	// OwnerJoinedAt is the event time of the owner's membership, when the
	// activity was created; zero means now.
	OwnerJoinedAt time.Time
}

// Group is a stored group.
type Group struct {
	// ID is the group's id, "grp_" followed by random base32.
	ID string
	// ActivityID is the activity the group belongs to.
	ActivityID string
	// Name is the display name.
	Name string
	// OwnerID is the owner.
	OwnerID string
	// MemberCount is the number of current members, the owner included.
	MemberCount int64
	// CreatedAt is when the group was stored.
	CreatedAt time.Time
}

// Member is a current member of a group.
type Member struct {
	// UserID is the user.
	UserID string
	// Role is the member's role.
	Role Role
	// JoinedAt is the event time of the user's latest join, the event that
	// decides the membership; for the owner, the time the group was
	// created. Being a function of the latest event only, it converges
	// whatever order the events arrive in.
	JoinedAt time.Time
}

// MembershipEvent is the input of AddMember and RemoveMember: one join or
// leave.
type MembershipEvent struct {
	// GroupID names the group; set it or ActivityID.
	GroupID string
	// ActivityID names the group by its activity, when GroupID is empty.
	ActivityID string
	// UserID is the user who joined or left.
	UserID string
	// EventTime is when the user joined or left.
	EventTime time.Time
	// Notice, when its Text is not empty, is stored addressed to the user
	// exactly when the change applies.
	Notice Notice
}

// Notice is the system message that announces a membership change.
type Notice struct {
	// Text is the message text; "{group_name}" in it is replaced by the
	// group's name. Empty means no notice.
	Text string
	// IdempotencyKey, when not empty, makes the group store one message
	// with this key, as NewMessage's does.
	IdempotencyKey string
}

// MembershipChange is the outcome of AddMember and RemoveMember.
type MembershipChange struct {
	// Applied is true when the call changed the membership.
	Applied bool
	// IsMember is the user's membership after the call.
	IsMember bool
	// Pending is true when the activity's group does not exist yet and the
	// change was kept for CreateGroup.
	Pending bool
	// NoticeStored is true when the call stored the event's notice.
	NoticeStored bool
}

// NewMessage is the input of SendSystemMessage.
type NewMessage struct {
	// GroupID is the group.
	GroupID string
	// Text is the message text.
	Text string
	// RecipientUserID, when not empty, addresses the message to one user.
	RecipientUserID string
	// IdempotencyKey, when not empty, makes repeats store one message.
	IdempotencyKey string
}

// Message is a stored message.
type Message struct {
	// ID is the message's id, "msg_" followed by random base32.
	ID string
	// GroupID is the group.
	GroupID string
	// Text is the message text.
	Text string
	// RecipientUserID is the addressee, or empty.
	RecipientUserID string
	// System is true for system messages.
	System bool
	// CreatedAt is when the message was stored.
	CreatedAt time.Time
}

// Page asks for one page of a listing.
type Page struct {
	// Size is the most items to return: 0 means DefaultPageSize, and sizes
	// above MaxPageSize mean MaxPageSize.
	Size int
	// Token continues a listing from a previous call's next token; empty
	// starts at the beginning.
	Token string
}

// limit returns the effective page size.
func (p Page) limit() int {
	switch {
	case p.Size <= 0:
		return DefaultPageSize
	case p.Size > MaxPageSize:
		return MaxPageSize
	}
	return p.Size
}
