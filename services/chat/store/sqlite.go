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
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteBusyTimeout is how long a connection waits for a lock held by
// another process before it fails with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// sqliteStore keeps the data in one SQLite file in WAL mode. All writes go
// through one goroutine on one connection (group commit, see
// sqliteWriter), so writers queue in the process instead of retrying on
// SQLITE_BUSY and share commits; reads use a pool of read-only connections
// that WAL lets run beside the writer.
type sqliteStore struct {
	w      *sql.DB // one connection; every write
	r      *sql.DB // read-only connections; w again for an in-memory database
	writer *sqliteWriter
	ckpt   *sql.DB // the writer's checkpoints; nil for an in-memory database

	// join, leave and memberState are indexed by byGroup and byActivity,
	// the column that names the group; all run on w.
	join, leave, memberState [2]*sql.Stmt
	pending, notice          *sql.Stmt // on w
	groupByID, send          *sql.Stmt
}

// Indexes of the statements that name a group by id or by activity.
const (
	byGroup    = 0
	byActivity = 1
)

// byColumn maps byGroup and byActivity to their column of groups.
var byColumn = [2]string{byGroup: "group_id", byActivity: "activity_id"}

// OpenSQLite opens the SQLite store. dsn is a file path, optionally with a
// "file:" prefix and query parameters of modernc.org/sqlite; the directory
// is created when missing, readable by the owner only (0700), as is a new
// database file (0600). The store sets busy_timeout, foreign_keys,
// journal_mode=WAL and synchronous=NORMAL (durable across a process crash;
// the last transactions can be lost on power failure); the writer also
// keeps its temporary data (savepoint journals) in memory and a 64 MiB page
// cache, which saves it most of its read and temporary-file system calls,
// and a background connection checkpoints the WAL. ":memory:" opens a
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
			return nil, errors.Join(fmt.Errorf("open sqlite: %w", err), w.Close())
		}
		n := max(4, runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		s.r = r
	}
	if err := s.init(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	var ckpt *sql.DB
	if !memory {
		if ckpt, err = sql.Open("sqlite", writeDSN); err != nil {
			return nil, errors.Join(fmt.Errorf("open sqlite: %w", err), s.Close())
		}
		ckpt.SetMaxOpenConns(1)
		s.ckpt = ckpt
	}
	if s.writer, err = newSQLiteWriter(ctx, w, ckpt); err != nil {
		return nil, errors.Join(err, s.Close())
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
	writeDSN = name + "?" + common + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-65536)&_txlock=immediate"
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
	type prepared struct {
		db    *sql.DB
		stmt  **sql.Stmt
		query string
	}
	todo := []prepared{
		{s.w, &s.send, sqliteSend},
		{s.w, &s.pending, sqlitePending},
		{s.w, &s.notice, sqliteNotice},
		{s.r, &s.groupByID, sqliteGroupSelect + ` WHERE g.group_id = ?1`},
	}
	for by, column := range byColumn {
		todo = append(todo,
			prepared{s.w, &s.join[by], sqliteMembershipUpsert(false, column)},
			prepared{s.w, &s.leave[by], sqliteMembershipUpsert(true, column)},
			prepared{s.w, &s.memberState[by], sqliteMemberState(column)})
	}
	for _, p := range todo {
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
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op (sql.ErrTxDone)
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			_ = rows.Close() // the Scan error is the one to report
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

	// sqlitePending keeps a change for a group not created yet: ?1
	// activity, ?2 user, ?3 state, ?4 and ?5 event time, ?6 notice text, ?7
	// notice key.
	sqlitePending = `INSERT INTO pending_members AS o (activity_id, user_id, state, event_time, event_nanos, notice_text, notice_key)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
		ON CONFLICT (activity_id, user_id) DO UPDATE SET
			state = excluded.state,
			event_time = excluded.event_time,
			event_nanos = excluded.event_nanos,
			notice_text = excluded.notice_text,
			notice_key = excluded.notice_key
		WHERE ` + beatsSQL
	sqliteSend = `INSERT INTO messages (message_id, group_id, text, recipient_user_id, system, idempotency_key, created_at)
		SELECT ?1, g.group_id, ?3, ?4, 1, ?5, ?6 FROM groups g WHERE g.group_id = ?2
		ON CONFLICT (group_id, idempotency_key) DO NOTHING
		RETURNING seq`
	sqliteMessageColumns = `message_id, group_id, text, recipient_user_id, system, created_at`
)

// sqliteNotice stores a membership notice: ?1 message id, ?2 group, ?3
// text, ?4 recipient, ?5 key, ?6 time. It has no RETURNING clause, which
// would make SQLite collect the row in a temporary table: whether it stored
// a message is its count of changed rows.
var sqliteNotice = `INSERT INTO messages (message_id, group_id, text, recipient_user_id, system, idempotency_key, created_at)
		SELECT ?1, g.group_id, ` + noticeTextSQL("?3") + `, ?4, 1, ?5, ?6 FROM groups g WHERE g.group_id = ?2
		ON CONFLICT (group_id, idempotency_key) DO NOTHING`

// sqliteMembershipUpsert returns the upsert described in membership.go, for
// a group named by column: ?1 group, ?2 user, ?3 and ?4 event time.
func sqliteMembershipUpsert(leave bool, column string) string {
	state, joinedAt, setJoinedAt := stateJoined, "?3", ",\n\t\t\tjoined_at = excluded.joined_at"
	if leave {
		state, joinedAt, setJoinedAt = stateLeft, "NULL", ""
	}
	return `INSERT INTO group_members AS o (group_id, user_id, role, state, prev_state, event_time, event_nanos, joined_at)
		SELECT g.group_id, ?2, 2, '` + state + `', 'none', ?3, ?4, ` + joinedAt + ` FROM groups g WHERE g.` + column + ` = ?1
		ON CONFLICT (group_id, user_id) DO UPDATE SET
			state = excluded.state,
			prev_state = o.state,
			event_time = excluded.event_time,
			event_nanos = excluded.event_nanos` + setJoinedAt + `
		WHERE ` + beatsSQL + ` AND o.role <> 1
		RETURNING prev_state, group_id`
}

// sqliteMemberState returns no row when the group named by column does not
// exist, and NULLs when the group has no row for the user.
func sqliteMemberState(column string) string {
	return `SELECT g.group_id, m.state, m.role FROM groups g
		LEFT JOIN group_members m ON m.group_id = g.group_id AND m.user_id = ?2
		WHERE g.` + column + ` = ?1`
}

func (s *sqliteStore) CreateGroup(ctx context.Context, g NewGroup) (Group, bool, error) {
	var group Group
	var created bool
	err := s.writer.do(ctx, "", func(ctx context.Context, tx *sql.Tx) error {
		var err error
		group, created, err = s.createGroupInTx(ctx, tx, g)
		return err
	})
	if err != nil {
		return Group{}, false, err
	}
	return group, created, nil
}

func (s *sqliteStore) createGroupInTx(ctx context.Context, tx *sql.Tx, g NewGroup) (Group, bool, error) {
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
	joined, err := s.applyPending(ctx, tx, group)
	if err != nil {
		return Group{}, false, err
	}
	group.MemberCount += joined
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

// applyPending applies the pending changes of the new group's activity in
// event-time order, with their notices, and returns how many members they
// added.
func (s *sqliteStore) applyPending(ctx context.Context, tx *sql.Tx, g Group) (int64, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM pending_members WHERE activity_id = ?1
		RETURNING user_id, state, event_time, event_nanos, notice_text, coalesce(notice_key, '')`, g.ActivityID)
	if err != nil {
		return 0, sqliteErr(err)
	}
	var changes []pendingChange
	for rows.Next() {
		var p pendingChange
		var micros int64
		if err := rows.Scan(&p.userID, &p.state, &micros, &p.nanos, &p.notice.Text, &p.notice.IdempotencyKey); err != nil {
			_ = rows.Close() // the Scan error is the one to report
			return 0, sqliteErr(err)
		}
		p.eventTime = time.UnixMicro(micros).UTC()
		changes = append(changes, p)
	}
	if err := rows.Close(); err != nil {
		return 0, sqliteErr(err)
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id, role, state, prev_state, event_time, event_nanos, joined_at)
			VALUES (?1, ?2, 2, ?3, 'none', ?4, ?5, CASE ?3 WHEN 'joined' THEN ?4 END)`,
			g.ID, p.userID, p.state, p.eventTime.UnixMicro(), p.nanos); err != nil {
			return 0, sqliteErr(err)
		}
		if p.state != stateJoined {
			continue
		}
		joined++
		if _, err := s.storeNotice(ctx, tx, g.ID, p.userID, p.notice); err != nil {
			return 0, err
		}
	}
	return joined, nil
}

// storeNotice stores n, when it has a text, addressed to userID, and
// reports whether it stored a message.
func (s *sqliteStore) storeNotice(ctx context.Context, tx *sql.Tx, groupID, userID string, n Notice) (bool, error) {
	if n.Text == "" {
		return false, nil
	}
	res, err := tx.StmtContext(ctx, s.notice).ExecContext(ctx, newMessageID(), groupID, n.Text, userID, nullKey(n.IdempotencyKey), now().UnixMicro())
	if err != nil {
		return false, sqliteErr(err)
	}
	stored, err := res.RowsAffected()
	if err != nil {
		return false, sqliteErr(err)
	}
	return stored == 1, nil
}

func (s *sqliteStore) AddMember(ctx context.Context, e MembershipEvent) (MembershipChange, error) {
	return s.applyMembership(ctx, false, e)
}

func (s *sqliteStore) RemoveMember(ctx context.Context, e MembershipEvent) (MembershipChange, error) {
	return s.applyMembership(ctx, true, e)
}

// applyMembership applies a join or leave, and stores its notice when it
// changes the membership, in one request of the writer (one savepoint of
// its transaction). SQLite has one writer at a
// time, so the group cannot appear between the upsert and the pending
// change.
func (s *sqliteStore) applyMembership(ctx context.Context, leave bool, e MembershipEvent) (MembershipChange, error) {
	by, target := byGroup, e.GroupID
	if target == "" {
		by, target = byActivity, e.ActivityID
	}
	upsert := s.join[by]
	if leave {
		upsert = s.leave[by]
	}
	micros, nanos := splitTime(e.EventTime)
	var c MembershipChange
	err := s.writer.do(ctx, "", func(ctx context.Context, tx *sql.Tx) error {
		var err error
		c, err = s.membershipInTx(ctx, tx, upsert, by, leave, e, target, micros.UnixMicro(), nanos)
		return err
	})
	if err != nil {
		return MembershipChange{}, err
	}
	return c, nil
}

func (s *sqliteStore) membershipInTx(ctx context.Context, tx *sql.Tx, upsert *sql.Stmt, by int, leave bool, e MembershipEvent, target string, micros int64, nanos int16) (MembershipChange, error) {
	var prev, groupID string
	err := tx.StmtContext(ctx, upsert).QueryRowContext(ctx, target, e.UserID, micros, nanos).Scan(&prev, &groupID)
	switch {
	case err == nil:
		c := outcome(leave, prev)
		if c.Applied {
			if c.NoticeStored, err = s.storeNotice(ctx, tx, groupID, e.UserID, e.Notice); err != nil {
				return MembershipChange{}, err
			}
		}
		return c, nil
	case !errors.Is(err, sql.ErrNoRows):
		return MembershipChange{}, sqliteErr(err)
	}
	var state sql.NullString
	var role sql.NullInt64
	err = tx.StmtContext(ctx, s.memberState[by]).QueryRowContext(ctx, target, e.UserID).Scan(&groupID, &state, &role)
	switch {
	case err == nil:
		return unappliedOutcome(leave, state.Valid, state.String, Role(role.Int64))
	case !errors.Is(err, sql.ErrNoRows):
		return MembershipChange{}, sqliteErr(err)
	case by == byGroup:
		return MembershipChange{}, ErrNotFound
	}
	if _, err := tx.StmtContext(ctx, s.pending).ExecContext(ctx, target, e.UserID, eventState(leave), micros, nanos,
		e.Notice.Text, nullKey(e.Notice.IdempotencyKey)); err != nil {
		return MembershipChange{}, sqliteErr(err)
	}
	return MembershipChange{Pending: true}, nil
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
	defer func() { _ = rows.Close() }() // rows.Err reports a failed read
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
	key := nullKey(m.IdempotencyKey) // NULL: without a key every call stores a message
	err := s.writer.do(ctx, "", func(ctx context.Context, tx *sql.Tx) error {
		var seq int64
		return tx.StmtContext(ctx, s.send).QueryRowContext(ctx, msg.ID, msg.GroupID, msg.Text, msg.RecipientUserID, key, msg.CreatedAt.UnixMicro()).Scan(&seq)
	})
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
	defer func() { _ = rows.Close() }() // rows.Err reports a failed read
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
	if s.writer != nil {
		errs = append(errs, s.writer.close())
	}
	stmts := []*sql.Stmt{s.send, s.pending, s.notice, s.groupByID}
	stmts = append(append(append(stmts, s.join[:]...), s.leave[:]...), s.memberState[:]...)
	for _, stmt := range stmts {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.Close())
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
