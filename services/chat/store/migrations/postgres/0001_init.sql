-- 0001_init creates the groups, their members and their messages.

CREATE TABLE groups (
	group_id    text        NOT NULL PRIMARY KEY,
	activity_id text        NOT NULL UNIQUE,
	name        text        NOT NULL,
	owner_id    text        NOT NULL,
	created_at  timestamptz NOT NULL
);

-- One row per group and user: the state the latest event set, and that
-- event's time. Rows of users who left stay as tombstones, so that an older
-- join arriving later is ignored.
CREATE TABLE group_members (
	group_id   text        NOT NULL REFERENCES groups (group_id),
	user_id    text        NOT NULL,
	role       smallint    NOT NULL CHECK (role IN (1, 2)),
	state      text        NOT NULL CHECK (state IN ('joined', 'left')),
	prev_state text        NOT NULL CHECK (prev_state IN ('none', 'joined', 'left')),
	event_time timestamptz NOT NULL,
	joined_at  timestamptz,
	PRIMARY KEY (group_id, user_id)
);

CREATE INDEX group_members_listing ON group_members (group_id, state, role, joined_at, user_id);

CREATE TABLE messages (
	seq               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_id        text        NOT NULL UNIQUE,
	group_id          text        NOT NULL REFERENCES groups (group_id),
	text              text        NOT NULL,
	recipient_user_id text        NOT NULL,
	system            boolean     NOT NULL,
	idempotency_key   text,
	created_at        timestamptz NOT NULL,
	UNIQUE (group_id, idempotency_key)
);

CREATE INDEX messages_listing ON messages (group_id, seq);
