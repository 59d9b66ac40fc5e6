package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgresStore keeps the data in PostgreSQL through a pgx pool; pgx
// prepares and caches every statement per connection. Membership changes,
// the consumer's hot path, go through a postgresBatcher that commits many
// of them in one transaction.
type postgresStore struct {
	pool    *pgxpool.Pool
	batcher *postgresBatcher
}

// OpenPostgres opens the PostgreSQL store. dsn is a libpq URL or key/value
// string; pgxpool's pool_* parameters, such as pool_max_conns, tune the
// pool, and search_path selects the schema.
func OpenPostgres(ctx context.Context, dsn string) (Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors can quote the DSN, password included.
		return nil, errors.New("open postgres: the DSN cannot be parsed")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &postgresStore{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	s.batcher = newPostgresBatcher(pool)
	return s, nil
}

// postgresMigrationLock is the advisory lock key that serializes migrators
// of one database, for example replicas starting together.
const postgresMigrationLock = 0x63686174 // "chat"

func (s *postgresStore) migrate(ctx context.Context) error {
	steps, err := migrations(DriverPostgres)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, postgresMigrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     NOT NULL PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL
		)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		applied := map[int]bool{}
		for _, v := range versions {
			applied[int(v)] = true
		}
		for _, m := range steps {
			if applied[m.version] {
				continue
			}
			// The simple protocol runs a file of several statements.
			if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, now()); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	return nil
}

const (
	postgresGroupSelect = `SELECT g.group_id, g.activity_id, g.name, g.owner_id, g.created_at,
		(SELECT count(*) FROM group_members m WHERE m.group_id = g.group_id AND m.state = 'joined')
		FROM groups g`

	// postgresPending keeps a change for a group not created yet: $1
	// activity, $2 user, $3 state, $4 and $5 event time, $6 notice text, $7
	// notice key.
	postgresPending = `INSERT INTO pending_members AS o (activity_id, user_id, state, event_time, event_nanos, notice_text, notice_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (activity_id, user_id) DO UPDATE SET
			state = excluded.state,
			event_time = excluded.event_time,
			event_nanos = excluded.event_nanos,
			notice_text = excluded.notice_text,
			notice_key = excluded.notice_key
		WHERE ` + beatsSQL
	// postgresInsertMessage stores a message under the group's next
	// group_seq: the update of last_seq locks the group's row until the
	// transaction ends, so one group's numbers commit in order. $1 message
	// id, $2 group, $3 text, $4 recipient, $5 key, $6 time.
	postgresInsertMessage = `WITH g AS (
			UPDATE groups SET last_seq = last_seq + 1 WHERE group_id = $2 RETURNING group_id, name, last_seq
		)
		INSERT INTO messages (message_id, group_id, group_seq, text, recipient_user_id, system, idempotency_key, created_at)
		SELECT $1, g.group_id, g.last_seq, %s, $4, true, $5, $6 FROM g
		ON CONFLICT (group_id, idempotency_key) DO NOTHING
		RETURNING group_seq`
	postgresMessageColumns = `group_seq, message_id, group_id, text, recipient_user_id, system, created_at`
)

// postgresActivityLock is the key space of the advisory locks that order
// CreateGroup and a pending change of the same activity.
const postgresActivityLock = 0x61637476 // "actv"

// postgresMembershipUpsert returns the upsert described in membership.go,
// for a group named by column: $1 group, $2 user, $3 and $4 event time. In
// the update branch o is the row as it was, which PostgreSQL has locked,
// so prev_state is exact under concurrency.
func postgresMembershipUpsert(leave bool, column string) string {
	state, joinedAt, setJoinedAt := stateJoined, "$3", ",\n\t\t\tjoined_at = excluded.joined_at"
	if leave {
		state, joinedAt, setJoinedAt = stateLeft, "NULL::timestamptz", ""
	}
	return `INSERT INTO group_members AS o (group_id, user_id, role, state, prev_state, event_time, event_nanos, joined_at)
		SELECT g.group_id, $2, 2, '` + state + `', 'none', $3, $4, ` + joinedAt + ` FROM groups g WHERE g.` + column + ` = $1
		ON CONFLICT (group_id, user_id) DO UPDATE SET
			state = excluded.state,
			prev_state = o.state,
			event_time = excluded.event_time,
			event_nanos = excluded.event_nanos` + setJoinedAt + `
		WHERE ` + beatsSQL + ` AND o.role <> 1
		RETURNING prev_state, group_id`
}

// postgresMemberState returns no row when the group named by column does
// not exist, and NULLs when the group has no row for the user.
func postgresMemberState(column string) string {
	return `SELECT g.group_id, m.state, m.role FROM groups g
		LEFT JOIN group_members m ON m.group_id = g.group_id AND m.user_id = $2
		WHERE g.` + column + ` = $1`
}

// The statements of both ways to name a group, built once.
var (
	postgresJoin    = [2]string{postgresMembershipUpsert(false, byColumn[byGroup]), postgresMembershipUpsert(false, byColumn[byActivity])}
	postgresLeave   = [2]string{postgresMembershipUpsert(true, byColumn[byGroup]), postgresMembershipUpsert(true, byColumn[byActivity])}
	postgresStateOf = [2]string{postgresMemberState(byColumn[byGroup]), postgresMemberState(byColumn[byActivity])}
	postgresSend    = fmt.Sprintf(postgresInsertMessage, "$3")
	postgresNotice  = fmt.Sprintf(postgresInsertMessage, noticeTextSQL("$3"))
)

func (s *postgresStore) CreateGroup(ctx context.Context, g NewGroup) (Group, bool, error) {
	group := Group{ID: newGroupID(), ActivityID: g.ActivityID, Name: g.Name, OwnerID: g.OwnerID, MemberCount: 1, CreatedAt: now()}
	ownerJoinedAt := group.CreatedAt
	if !g.OwnerJoinedAt.IsZero() {
		ownerJoinedAt = g.OwnerJoinedAt.UTC().Truncate(time.Microsecond)
	}
	var existing Group
	created := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, postgresActivityLock, g.ActivityID); err != nil {
			return err
		}
		// A concurrent creator of the same activity makes this insert wait
		// for its commit and then do nothing; the select below, a new
		// statement, sees the committed group.
		tag, err := tx.Exec(ctx, `INSERT INTO groups (group_id, activity_id, name, owner_id, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (activity_id) DO NOTHING`,
			group.ID, group.ActivityID, group.Name, group.OwnerID, group.CreatedAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			existing, err = scanPostgresGroup(tx.QueryRow(ctx, postgresGroupSelect+` WHERE g.activity_id = $1`, g.ActivityID))
			return err
		}
		created = true
		if _, err = tx.Exec(ctx, `INSERT INTO group_members (group_id, user_id, role, state, prev_state, event_time, joined_at)
			VALUES ($1, $2, 1, 'joined', 'none', $3, $3)`, group.ID, group.OwnerID, ownerJoinedAt); err != nil {
			return err
		}
		joined, err := applyPostgresPending(ctx, tx, group)
		group.MemberCount += joined
		return err
	})
	if err != nil {
		return Group{}, false, postgresErr(err)
	}
	if !created {
		return existing, false, nil
	}
	return group, true, nil
}

func (s *postgresStore) GroupByID(ctx context.Context, groupID string) (Group, error) {
	return scanPostgresGroup(s.pool.QueryRow(ctx, postgresGroupSelect+` WHERE g.group_id = $1`, groupID))
}

func (s *postgresStore) GroupByActivityID(ctx context.Context, activityID string) (Group, error) {
	return scanPostgresGroup(s.pool.QueryRow(ctx, postgresGroupSelect+` WHERE g.activity_id = $1`, activityID))
}

func scanPostgresGroup(row pgx.Row) (Group, error) {
	var g Group
	err := row.Scan(&g.ID, &g.ActivityID, &g.Name, &g.OwnerID, &g.CreatedAt, &g.MemberCount)
	if errors.Is(err, pgx.ErrNoRows) {
		return Group{}, ErrNotFound
	}
	if err != nil {
		return Group{}, postgresErr(err)
	}
	g.CreatedAt = g.CreatedAt.UTC()
	return g, nil
}

// applyPostgresPending applies the pending changes of the new group's
// activity in event-time order, with their notices, and returns how many
// members they added.
func applyPostgresPending(ctx context.Context, tx pgx.Tx, g Group) (int64, error) {
	rows, err := tx.Query(ctx, `DELETE FROM pending_members WHERE activity_id = $1
		RETURNING user_id, state, event_time, event_nanos, notice_text, coalesce(notice_key, '')`, g.ActivityID)
	if err != nil {
		return 0, err
	}
	changes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pendingChange, error) {
		var p pendingChange
		err := row.Scan(&p.userID, &p.state, &p.eventTime, &p.nanos, &p.notice.Text, &p.notice.IdempotencyKey)
		return p, err
	})
	if err != nil {
		return 0, err
	}
	slices.SortFunc(changes, func(a, b pendingChange) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	var joined int64
	for _, p := range changes {
		if p.userID == g.OwnerID {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO group_members (group_id, user_id, role, state, prev_state, event_time, event_nanos, joined_at)
			VALUES ($1, $2, 2, $3, 'none', $4, $5, CASE WHEN $3 = 'joined' THEN $4::timestamptz END)`,
			g.ID, p.userID, p.state, p.eventTime, p.nanos); err != nil {
			return 0, err
		}
		if p.state != stateJoined {
			continue
		}
		joined++
		if _, err := storePostgresNotice(ctx, tx, g.ID, p.userID, p.notice); err != nil {
			return 0, err
		}
	}
	return joined, nil
}

// storePostgresNotice stores n, when it has a text, addressed to userID,
// and reports whether it stored a message.
func storePostgresNotice(ctx context.Context, tx postgresQuerier, groupID, userID string, n Notice) (bool, error) {
	if n.Text == "" {
		return false, nil
	}
	var seq int64
	err := tx.QueryRow(ctx, postgresNotice, newMessageID(), groupID, n.Text, userID, nullKey(n.IdempotencyKey), now()).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (s *postgresStore) AddMember(ctx context.Context, e MembershipEvent) (MembershipChange, error) {
	return s.applyMembership(ctx, false, e)
}

func (s *postgresStore) RemoveMember(ctx context.Context, e MembershipEvent) (MembershipChange, error) {
	return s.applyMembership(ctx, true, e)
}

// applyMembership applies a join or leave, and stores its notice when it
// changes the membership, in one transaction: a batch of the batcher,
// ordered by the group or activity the change names.
func (s *postgresStore) applyMembership(ctx context.Context, leave bool, e MembershipEvent) (MembershipChange, error) {
	var c MembershipChange
	key := "g:" + e.GroupID
	if e.GroupID == "" {
		key = "a:" + e.ActivityID
	}
	err := s.batcher.do(ctx, key+"\x00"+e.UserID, func(ctx context.Context, tx postgresQuerier) error {
		var err error
		c, err = postgresMembershipInTx(ctx, tx, leave, e, false)
		return err
	})
	if err != nil {
		return MembershipChange{}, postgresErr(err)
	}
	return c, nil
}

// postgresMembershipInTx applies one change in tx. When the group named by
// activity does not exist, it takes the activity's advisory lock, which
// CreateGroup holds while it creates the group and applies the pending
// changes, and tries again: then either the group exists or the pending
// change is kept before CreateGroup reads it. It tries again too when the
// group appears between the upsert and the read that follows it, as the
// upsert then found no group but the change is in no pending row either.
func postgresMembershipInTx(ctx context.Context, tx postgresQuerier, leave bool, e MembershipEvent, locked bool) (MembershipChange, error) {
	by, target := byGroup, e.GroupID
	if target == "" {
		by, target = byActivity, e.ActivityID
	}
	upsert := postgresJoin[by]
	if leave {
		upsert = postgresLeave[by]
	}
	micros, nanos := splitTime(e.EventTime)
	var prev, groupID string
	err := tx.QueryRow(ctx, upsert, target, e.UserID, micros, nanos).Scan(&prev, &groupID)
	switch {
	case err == nil:
		c := outcome(leave, prev)
		if c.Applied {
			if c.NoticeStored, err = storePostgresNotice(ctx, tx, groupID, e.UserID, e.Notice); err != nil {
				return MembershipChange{}, err
			}
		}
		return c, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return MembershipChange{}, err
	}
	var state *string
	var role *int16
	err = tx.QueryRow(ctx, postgresStateOf[by], target, e.UserID).Scan(&groupID, &state, &role)
	switch {
	case err == nil && (state == nil || role == nil) && by == byActivity && !locked:
		// The group was created, with its pending changes, between the
		// upsert and this read: the upsert finds it now.
		return postgresMembershipInTx(ctx, tx, leave, e, true)
	case err == nil:
		if state == nil || role == nil {
			return unappliedOutcome(leave, false, "", 0)
		}
		return unappliedOutcome(leave, true, *state, Role(*role))
	case !errors.Is(err, pgx.ErrNoRows):
		return MembershipChange{}, err
	case by == byGroup:
		return MembershipChange{}, ErrNotFound
	case !locked:
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, postgresActivityLock, target); err != nil {
			return MembershipChange{}, err
		}
		return postgresMembershipInTx(ctx, tx, leave, e, true)
	}
	if _, err := tx.Exec(ctx, postgresPending, target, e.UserID, eventState(leave), micros, nanos,
		e.Notice.Text, nullKey(e.Notice.IdempotencyKey)); err != nil {
		return MembershipChange{}, err
	}
	return MembershipChange{Pending: true}, nil
}

func (s *postgresStore) ListMembers(ctx context.Context, groupID string, page Page) ([]Member, string, error) {
	after, err := decodeMemberToken(page.Token)
	if err != nil {
		return nil, "", err
	}
	if err := s.groupExists(ctx, groupID); err != nil {
		return nil, "", err
	}
	limit := page.limit()
	rows, err := s.pool.Query(ctx, `SELECT user_id, role, joined_at FROM group_members
		WHERE group_id = $1 AND state = 'joined' AND (role, joined_at, user_id) > ($2, $3, $4)
		ORDER BY role, joined_at, user_id LIMIT $5`,
		groupID, int16(after.role), after.joinedAt, after.userID, limit+1)
	if err != nil {
		return nil, "", postgresErr(err)
	}
	members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Member, error) {
		var m Member
		var role int16
		err := row.Scan(&m.UserID, &role, &m.JoinedAt)
		m.Role = Role(role)
		m.JoinedAt = m.JoinedAt.UTC()
		return m, err
	})
	if err != nil {
		return nil, "", postgresErr(err)
	}
	if len(members) > limit {
		members = members[:limit]
		return members, encodeMemberToken(members[limit-1]), nil
	}
	return members, "", nil
}

func (s *postgresStore) groupExists(ctx context.Context, groupID string) error {
	var one int32
	err := s.pool.QueryRow(ctx, `SELECT 1 FROM groups WHERE group_id = $1`, groupID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return postgresErr(err)
}

func (s *postgresStore) SendSystemMessage(ctx context.Context, m NewMessage) (Message, bool, error) {
	msg := Message{ID: newMessageID(), GroupID: m.GroupID, Text: m.Text, RecipientUserID: m.RecipientUserID, System: true, CreatedAt: now()}
	key := nullKey(m.IdempotencyKey) // NULL: without a key every call stores a message
	var seq int64
	// One statement is its own transaction: the group's row stays locked
	// from the sequence's update to the commit.
	err := s.pool.QueryRow(ctx, postgresSend, msg.ID, msg.GroupID, msg.Text, msg.RecipientUserID, key, msg.CreatedAt).Scan(&seq)
	switch {
	case err == nil:
		return msg, true, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return Message{}, false, postgresErr(err)
	case key == nil:
		return Message{}, false, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `SELECT `+postgresMessageColumns+` FROM messages
		WHERE group_id = $1 AND idempotency_key = $2`, m.GroupID, m.IdempotencyKey)
	if err != nil {
		return Message{}, false, postgresErr(err)
	}
	stored, err := collectPostgresMessages(rows)
	if err != nil {
		return Message{}, false, err
	}
	if len(stored) == 0 {
		return Message{}, false, ErrNotFound
	}
	return stored[0].Message, false, nil
}

func (s *postgresStore) ListMessages(ctx context.Context, groupID string, page Page) ([]Message, string, error) {
	after, err := decodeMessageToken(page.Token)
	if err != nil {
		return nil, "", err
	}
	if err := s.groupExists(ctx, groupID); err != nil {
		return nil, "", err
	}
	limit := page.limit()
	rows, err := s.pool.Query(ctx, `SELECT `+postgresMessageColumns+` FROM messages
		WHERE group_id = $1 AND group_seq > $2 ORDER BY group_seq LIMIT $3`, groupID, after, limit+1)
	if err != nil {
		return nil, "", postgresErr(err)
	}
	stored, err := collectPostgresMessages(rows)
	if err != nil {
		return nil, "", err
	}
	return pageOfMessages(stored, limit)
}

func collectPostgresMessages(rows pgx.Rows) ([]sequencedMessage, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sequencedMessage, error) {
		var m sequencedMessage
		err := row.Scan(&m.seq, &m.ID, &m.GroupID, &m.Text, &m.RecipientUserID, &m.System, &m.CreatedAt)
		m.CreatedAt = m.CreatedAt.UTC()
		return m, err
	})
	if err != nil {
		return nil, postgresErr(err)
	}
	return out, nil
}

func (s *postgresStore) Ping(ctx context.Context) error {
	return postgresErr(s.pool.Ping(ctx))
}

func (s *postgresStore) Close() error {
	s.batcher.close()
	s.pool.Close()
	return nil
}

// postgresErr marks the errors that a retry may cure as ErrUnavailable: a
// lost or refused connection, a server shutting down or out of connections,
// a serialization failure or deadlock.
func postgresErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "57P"), // operator intervention: shutdown
			pgErr.Code == "53300",                // too many connections
			pgErr.Code == "40001",                // serialization failure
			pgErr.Code == "40P01":                // deadlock
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
