-- 0001_init creates the groups, their members and their messages.
-- Times are INTEGER microseconds since the Unix epoch, UTC.

CREATE TABLE groups (
	group_id    TEXT    NOT NULL PRIMARY KEY,
	activity_id TEXT    NOT NULL UNIQUE,
	name        TEXT    NOT NULL,
	owner_id    TEXT    NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;

-- One row per group and user: the state the latest event set, and that
-- event's time. Rows of users who left stay as tombstones, so that an older
-- join arriving later is ignored.
CREATE TABLE group_members (
	group_id   TEXT    NOT NULL REFERENCES groups (group_id),
	user_id    TEXT    NOT NULL,
	role       INTEGER NOT NULL CHECK (role IN (1, 2)),
	state      TEXT    NOT NULL CHECK (state IN ('joined', 'left')),
	prev_state TEXT    NOT NULL CHECK (prev_state IN ('none', 'joined', 'left')),
	event_time INTEGER NOT NULL,
	joined_at  INTEGER,
	PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX group_members_listing ON group_members (group_id, state, role, joined_at, user_id);

CREATE TABLE messages (
	seq               INTEGER PRIMARY KEY AUTOINCREMENT,
	message_id        TEXT    NOT NULL UNIQUE,
	group_id          TEXT    NOT NULL REFERENCES groups (group_id),
	text              TEXT    NOT NULL,
	recipient_user_id TEXT    NOT NULL,
	system            INTEGER NOT NULL,
	idempotency_key   TEXT,
	created_at        INTEGER NOT NULL,
	UNIQUE (group_id, idempotency_key)
) STRICT;

CREATE INDEX messages_listing ON messages (group_id, seq);
