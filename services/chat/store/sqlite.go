package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteBusyTimeout is how long a connection waits for a lock held by
// another process before it fails with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// sqliteStore keeps the data in one SQLite file in WAL mode. All writes go
// through one connection, so writers queue in the process instead of
// retrying on SQLITE_BUSY; reads use a pool of read-only connections that
// WAL lets run beside the writer.
type sqliteStore struct {
	w *sql.DB // one connection; every write
	r *sql.DB // read-only connections; w again for an in-memory database

	join, leave, memberState, groupByID, send *sql.Stmt
}

// OpenSQLite opens the SQLite store. dsn is a file path, optionally with a
// "file:" prefix and query parameters of modernc.org/sqlite; the directory
// is created when missing, readable by the owner only (0700), as is a new
// database file (0600). The store sets busy_timeout, foreign_keys,
// journal_mode=WAL and synchronous=NORMAL (durable across a process crash;
// the last transactions can be lost on power failure). ":memory:" opens a
// private in-memory database on a single connection, for tests.
func OpenSQLite(ctx context.Context, dsn string) (Store, error) {
	writeDSN, readDSN, memory, err := sqliteDSNs(dsn)
	if err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", writeDSN)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &sqliteStore{w: w, r: w}
	if !memory {
		r, err := sql.Open("sqlite", readDSN)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		n := max(4, runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		s.r = r
	}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// sqliteDSNs returns the DSNs of the writer and of the readers.
func sqliteDSNs(dsn string) (writeDSN, readDSN string, memory bool, err error) {
	name, query, _ := strings.Cut(dsn, "?")
	file := strings.TrimPrefix(name, "file:")
	if file == "" {
		return "", "", false, errors.New("open sqlite: the DSN has no file path")
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return "", "", false, fmt.Errorf("open sqlite: bad DSN parameters: %w", err)
	}
	memory = file == ":memory:" || params.Get("mode") == "memory"
	if !memory {
		if err := createPrivate(file); err != nil {
			return "", "", false, err
		}
	}
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", sqliteBusyTimeout.Milliseconds())
	if query != "" {
		common += "&" + query
	}
	writeDSN = name + "?" + common + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	readDSN = name + "?" + common + "&_pragma=query_only(1)"
	return writeDSN, readDSN, memory, nil
}

// createPrivate creates the database's directory (0700) and an empty
// database file (0600) when they are missing, so that only the service's
// user can read the data: SQLite gives its -wal and -shm files the mode of
// the database file. Existing files and directories keep their modes.
func createPrivate(file string) error {
	if dir := filepath.Dir(file); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("open sqlite: create the database directory: %w", err)
		}
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open sqlite: create the database file: %w", err)
	}
	return f.Close()
}

// init checks the connection, migrates the schema and prepares the
// statements of the hot paths.
func (s *sqliteStore) init(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("open sqlite: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("open sqlite: %w", err)
	}
	for _, p := range []struct {
		db    *sql.DB
		stmt  **sql.Stmt
		query string
	}{
		{s.w, &s.join, sqliteJoin},
		{s.w, &s.leave, sqliteLeave},
		{s.w, &s.send, sqliteSend},
		{s.r, &s.memberState, sqliteMemberState},
		{s.r, &s.groupByID, sqliteGroupSelect + ` WHERE g.group_id = ?1`},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("open sqlite: prepare: %w", err)
		}
		*p.stmt = stmt
	}
	return nil
}

func (s *sqliteStore) migrate(ctx context.Context) error {
	steps, err := migrations(DriverSQLite)
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	defer tx.Rollback()
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate sqlite: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	for _, m := range steps {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate sqlite: %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)`,
			m.version, m.name, now().UnixMicro()); err != nil {
			return fmt.Errorf("migrate sqlite: %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	return nil
}

const (
	sqliteGroupSelect = `SELECT g.group_id, g.activity_id, g.name, g.owner_id, g.created_at,
		(SELECT count(*) FROM group_members m WHERE m.group_id = g.group_id AND m.state = 'joined')
		FROM groups g`

	// sqliteJoin and sqliteLeave are the upserts described in
	// membership.go: ?1 group, ?2 user, ?3 event time.
	sqliteJoin = `INSERT INTO group_members AS m (group_id, user_id, role, state, prev_state, event_time, joined_at)
		SELECT g.group_id, ?2, 2, 'joined', 'none', ?3, ?3 FROM groups g WHERE g.group_id = ?1
		ON CONFLICT (group_id, user_id) DO UPDATE SET
			state = 'joined',
			prev_state = m.state,
			event_time = excluded.event_time,
			joined_at = excluded.joined_at
		WHERE m.event_time < excluded.event_time AND m.role <> 1
		RETURNING prev_state`
	sqliteLeave = `INSERT INTO group_members AS m (group_id, user_id, role, state, prev_state, event_time, joined_at)
		SELECT g.group_id, ?2, 2, 'left', 'none', ?3, NULL FROM groups g WHERE g.group_id = ?1
		ON CONFLICT (group_id, user_id) DO UPDATE SET
			state = 'left',
			prev_state = m.state,
			event_time = excluded.event_time
		WHERE m.event_time < excluded.event_time AND m.role <> 1
		RETURNING prev_state`
	// sqliteMemberState returns no row when the group does not exist, and
	// NULLs when the group has no row for the user.
	sqliteMemberState = `SELECT m.state, m.role FROM groups g
		LEFT JOIN group_members m ON m.group_id = g.group_id AND m.user_id = ?2
		WHERE g.group_id = ?1`
	sqliteSend = `INSERT INTO messages (message_id, group_id, text, recipient_user_id, system, idempotency_key, created_at)
		SELECT ?1, g.group_id, ?3, ?4, 1, ?5, ?6 FROM groups g WHERE g.group_id = ?2
		ON CONFLICT (group_id, idempotency_key) DO NOTHING
		RETURNING seq`
	sqliteMessageColumns = `message_id, group_id, text, recipient_user_id, system, created_at`
)

func (s *sqliteStore) CreateGroup(ctx context.Context, g NewGroup) (Group, bool, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return Group{}, false, sqliteErr(err)
	}
	defer tx.Rollback()
	group := Group{ID: newGroupID(), ActivityID: g.ActivityID, Name: g.Name, OwnerID: g.OwnerID, MemberCount: 1, CreatedAt: now()}
	ownerJoinedAt := group.CreatedAt
	if !g.OwnerJoinedAt.IsZero() {
		ownerJoinedAt = g.OwnerJoinedAt.UTC().Truncate(time.Microsecond)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO groups (group_id, activity_id, name, owner_id, created_at)
		VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (activity_id) DO NOTHING`,
		group.ID, group.ActivityID, group.Name, group.OwnerID, group.CreatedAt.UnixMicro())
	if err != nil {
		return Group{}, false, sqliteErr(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return Group{}, false, sqliteErr(err)
	} else if n == 0 {
		existing, err := scanSQLiteGroup(tx.QueryRowContext(ctx, sqliteGroupSelect+` WHERE g.activity_id = ?1`, g.ActivityID))
		if err != nil {
			return Group{}, false, err
		}
		return existing, false, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id, role, state, prev_state, event_time, joined_at)
		VALUES (?1, ?2, 1, 'joined', 'none', ?3, ?3)`,
		group.ID, group.OwnerID, ownerJoinedAt.UnixMicro()); err != nil {
		return Group{}, false, sqliteErr(err)
	}
	if err := tx.Commit(); err != nil {
		return Group{}, false, sqliteErr(err)
	}
	return group, true, nil
}

func (s *sqliteStore) GroupByID(ctx context.Context, groupID string) (Group, error) {
	return scanSQLiteGroup(s.groupByID.QueryRowContext(ctx, groupID))
}

func (s *sqliteStore) GroupByActivityID(ctx context.Context, activityID string) (Group, error) {
	return scanSQLiteGroup(s.r.QueryRowContext(ctx, sqliteGroupSelect+` WHERE g.activity_id = ?1`, activityID))
}

func scanSQLiteGroup(row *sql.Row) (Group, error) {
	var g Group
	var created int64
	err := row.Scan(&g.ID, &g.ActivityID, &g.Name, &g.OwnerID, &created, &g.MemberCount)
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, ErrNotFound
	}
	if err != nil {
		return Group{}, sqliteErr(err)
	}
	g.CreatedAt = time.UnixMicro(created).UTC()
	return g, nil
}

func (s *sqliteStore) AddMember(ctx context.Context, groupID, userID string, eventTime time.Time) (MembershipChange, error) {
	return s.applyMembership(ctx, s.join, false, groupID, userID, eventTime)
}

func (s *sqliteStore) RemoveMember(ctx context.Context, groupID, userID string, eventTime time.Time) (MembershipChange, error) {
	return s.applyMembership(ctx, s.leave, true, groupID, userID, eventTime)
}

func (s *sqliteStore) applyMembership(ctx context.Context, upsert *sql.Stmt, leave bool, groupID, userID string, eventTime time.Time) (MembershipChange, error) {
	var prev string
	err := upsert.QueryRowContext(ctx, groupID, userID, dbTime(eventTime).UnixMicro()).Scan(&prev)
	switch {
	case err == nil:
		if leave {
			return leaveOutcome(prev), nil
		}
		return joinOutcome(prev), nil
	case !errors.Is(err, sql.ErrNoRows):
		return MembershipChange{}, sqliteErr(err)
	}
	var state sql.NullString
	var role sql.NullInt64
	err = s.memberState.QueryRowContext(ctx, groupID, userID).Scan(&state, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return MembershipChange{}, ErrNotFound
	}
	if err != nil {
		return MembershipChange{}, sqliteErr(err)
	}
	return unappliedOutcome(leave, state.Valid, state.String, Role(role.Int64))
}

func (s *sqliteStore) ListMembers(ctx context.Context, groupID string, page Page) ([]Member, string, error) {
	after, err := decodeMemberToken(page.Token)
	if err != nil {
		return nil, "", err
	}
	if err := s.groupExists(ctx, groupID); err != nil {
		return nil, "", err
	}
	limit := page.limit()
	rows, err := s.r.QueryContext(ctx, `SELECT user_id, role, joined_at FROM group_members
		WHERE group_id = ?1 AND state = 'joined' AND (role, joined_at, user_id) > (?2, ?3, ?4)
		ORDER BY role, joined_at, user_id LIMIT ?5`,
		groupID, int(after.role), after.joinedAt.UnixMicro(), after.userID, limit+1)
	if err != nil {
		return nil, "", sqliteErr(err)
	}
	defer rows.Close()
	members := make([]Member, 0, min(limit, 64))
	for rows.Next() {
		var m Member
		var joined int64
		if err := rows.Scan(&m.UserID, &m.Role, &joined); err != nil {
			return nil, "", sqliteErr(err)
		}
		m.JoinedAt = time.UnixMicro(joined).UTC()
		members = append(members, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", sqliteErr(err)
	}
	if len(members) > limit {
		members = members[:limit]
		return members, encodeMemberToken(members[limit-1]), nil
	}
	return members, "", nil
}

func (s *sqliteStore) groupExists(ctx context.Context, groupID string) error {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM groups WHERE group_id = ?1`, groupID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return sqliteErr(err)
}

func (s *sqliteStore) SendSystemMessage(ctx context.Context, m NewMessage) (Message, bool, error) {
	msg := Message{ID: newMessageID(), GroupID: m.GroupID, Text: m.Text, RecipientUserID: m.RecipientUserID, System: true, CreatedAt: now()}
	var key any // NULL: without a key every call stores a message
	if m.IdempotencyKey != "" {
		key = m.IdempotencyKey
	}
	var seq int64
	err := s.send.QueryRowContext(ctx, msg.ID, msg.GroupID, msg.Text, msg.RecipientUserID, key, msg.CreatedAt.UnixMicro()).Scan(&seq)
	switch {
	case err == nil:
		return msg, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return Message{}, false, sqliteErr(err)
	case m.IdempotencyKey == "":
		return Message{}, false, ErrNotFound
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, `+sqliteMessageColumns+` FROM messages
		WHERE group_id = ?1 AND idempotency_key = ?2`, m.GroupID, m.IdempotencyKey)
	if err != nil {
		return Message{}, false, sqliteErr(err)
	}
	stored, err := scanSQLiteMessages(rows)
	if err != nil {
		return Message{}, false, err
	}
	if len(stored) == 0 {
		return Message{}, false, ErrNotFound
	}
	return stored[0].Message, false, nil
}

func (s *sqliteStore) ListMessages(ctx context.Context, groupID string, page Page) ([]Message, string, error) {
	after, err := decodeMessageToken(page.Token)
	if err != nil {
		return nil, "", err
	}
	if err := s.groupExists(ctx, groupID); err != nil {
		return nil, "", err
	}
	limit := page.limit()
	rows, err := s.r.QueryContext(ctx, `SELECT seq, `+sqliteMessageColumns+` FROM messages
		WHERE group_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3`, groupID, after, limit+1)
	if err != nil {
		return nil, "", sqliteErr(err)
	}
	stored, err := scanSQLiteMessages(rows)
	if err != nil {
		return nil, "", err
	}
	return pageOfMessages(stored, limit)
}

// sequencedMessage is a message with its position in the group.
type sequencedMessage struct {
	Message
	seq int64
}

// pageOfMessages cuts stored, read with limit+1, to one page and its token.
func pageOfMessages(stored []sequencedMessage, limit int) ([]Message, string, error) {
	next := ""
	if len(stored) > limit {
		stored = stored[:limit]
		next = encodeMessageToken(stored[limit-1].seq)
	}
	out := make([]Message, len(stored))
	for i, m := range stored {
		out[i] = m.Message
	}
	return out, next, nil
}

func scanSQLiteMessages(rows *sql.Rows) ([]sequencedMessage, error) {
	defer rows.Close()
	var out []sequencedMessage
	for rows.Next() {
		var m sequencedMessage
		var created int64
		if err := rows.Scan(&m.seq, &m.ID, &m.GroupID, &m.Text, &m.RecipientUserID, &m.System, &created); err != nil {
			return nil, sqliteErr(err)
		}
		m.CreatedAt = time.UnixMicro(created).UTC()
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, sqliteErr(err)
	}
	return out, nil
}

func (s *sqliteStore) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return sqliteErr(err)
	}
	var one int
	return sqliteErr(s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one))
}

func (s *sqliteStore) Close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{s.join, s.leave, s.send, s.memberState, s.groupByID} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// sqliteErr marks the errors that a retry may cure as ErrUnavailable.
func sqliteErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return err
}
