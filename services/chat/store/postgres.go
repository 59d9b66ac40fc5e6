package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgresStore keeps the data in PostgreSQL through a pgx pool. Each
// membership change is one upsert statement, so it needs no explicit
// transaction; pgx prepares and caches every statement per connection.
type postgresStore struct {
	pool *pgxpool.Pool
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

	// postgresJoin and postgresLeave are the upserts described in
	// membership.go: $1 group, $2 user, $3 event time. In the update branch
	// m is the row as it was, which PostgreSQL has locked, so prev_state
	// is exact under concurrency.
	postgresJoin = `INSERT INTO group_members AS m (group_id, user_id, role, state, prev_state, event_time, joined_at)
		SELECT g.group_id, $2, 2, 'joined', 'none', $3, $3 FROM groups g WHERE g.group_id = $1
		ON CONFLICT (group_id, user_id) DO UPDATE SET
			state = 'joined',
			prev_state = m.state,
			event_time = excluded.event_time,
			joined_at = excluded.joined_at
		WHERE m.event_time < excluded.event_time AND m.role <> 1
		RETURNING prev_state`
	postgresLeave = `INSERT INTO group_members AS m (group_id, user_id, role, state, prev_state, event_time, joined_at)
		SELECT g.group_id, $2, 2, 'left', 'none', $3, NULL FROM groups g WHERE g.group_id = $1
		ON CONFLICT (group_id, user_id) DO UPDATE SET
			state = 'left',
			prev_state = m.state,
			event_time = excluded.event_time
		WHERE m.event_time < excluded.event_time AND m.role <> 1
		RETURNING prev_state`
	postgresMemberState = `SELECT m.state, m.role FROM groups g
		LEFT JOIN group_members m ON m.group_id = g.group_id AND m.user_id = $2
		WHERE g.group_id = $1`
	postgresMessageColumns = `seq, message_id, group_id, text, recipient_user_id, system, created_at`
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
		_, err = tx.Exec(ctx, `INSERT INTO group_members (group_id, user_id, role, state, prev_state, event_time, joined_at)
			VALUES ($1, $2, 1, 'joined', 'none', $3, $3)`, group.ID, group.OwnerID, ownerJoinedAt)
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

func (s *postgresStore) AddMember(ctx context.Context, groupID, userID string, eventTime time.Time) (MembershipChange, error) {
	return s.applyMembership(ctx, postgresJoin, false, groupID, userID, eventTime)
}

func (s *postgresStore) RemoveMember(ctx context.Context, groupID, userID string, eventTime time.Time) (MembershipChange, error) {
	return s.applyMembership(ctx, postgresLeave, true, groupID, userID, eventTime)
}

func (s *postgresStore) applyMembership(ctx context.Context, upsert string, leave bool, groupID, userID string, eventTime time.Time) (MembershipChange, error) {
	var prev string
	err := s.pool.QueryRow(ctx, upsert, groupID, userID, dbTime(eventTime)).Scan(&prev)
	switch {
	case err == nil:
		if leave {
			return leaveOutcome(prev), nil
		}
		return joinOutcome(prev), nil
	case !errors.Is(err, pgx.ErrNoRows):
		return MembershipChange{}, postgresErr(err)
	}
	var state *string
	var role *int16
	err = s.pool.QueryRow(ctx, postgresMemberState, groupID, userID).Scan(&state, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return MembershipChange{}, ErrNotFound
	}
	if err != nil {
		return MembershipChange{}, postgresErr(err)
	}
	if state == nil || role == nil {
		return unappliedOutcome(leave, false, "", 0)
	}
	return unappliedOutcome(leave, true, *state, Role(*role))
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
	var key *string // NULL: without a key every call stores a message
	if m.IdempotencyKey != "" {
		key = &m.IdempotencyKey
	}
	var seq int64
	err := s.pool.QueryRow(ctx, `INSERT INTO messages (message_id, group_id, text, recipient_user_id, system, idempotency_key, created_at)
		SELECT $1, g.group_id, $3, $4, true, $5, $6 FROM groups g WHERE g.group_id = $2
		ON CONFLICT (group_id, idempotency_key) DO NOTHING
		RETURNING seq`, msg.ID, msg.GroupID, msg.Text, msg.RecipientUserID, key, msg.CreatedAt).Scan(&seq)
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
		WHERE group_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, groupID, after, limit+1)
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
