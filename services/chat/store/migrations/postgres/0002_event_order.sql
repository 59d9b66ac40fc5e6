-- 0002_event_order keeps event times at nanosecond precision, records the
-- membership changes of activities whose group does not exist yet, and
-- numbers each group's messages in commit order.

-- event_nanos is the sub-microsecond part of event_time, 0 to 999: the
-- deciding event is the one with the greatest (event_time, event_nanos).
ALTER TABLE group_members ADD COLUMN event_nanos smallint NOT NULL DEFAULT 0;

-- One row per activity and user whose group does not exist yet: the latest
-- change by the same rule as group_members, and its notice. CreateGroup
-- applies and deletes the activity's rows.
CREATE TABLE pending_members (
	activity_id text        NOT NULL,
	user_id     text        NOT NULL,
	state       text        NOT NULL CHECK (state IN ('joined', 'left')),
	event_time  timestamptz NOT NULL,
	event_nanos smallint    NOT NULL,
	notice_text text        NOT NULL,
	notice_key  text,
	PRIMARY KEY (activity_id, user_id)
);

-- group_seq numbers a group's messages. A writer takes the next number by
-- updating groups.last_seq, which locks the group's row until it commits,
-- so the numbers of one group become visible in order and a reader paging
-- by group_seq never skips a message. The identity seq is assigned at
-- insert, not at commit, and no longer orders anything.
ALTER TABLE groups ADD COLUMN last_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN group_seq bigint;
UPDATE messages SET group_seq = seq;
UPDATE groups g SET last_seq = m.last FROM (SELECT group_id, max(seq) AS last FROM messages GROUP BY group_id) m
	WHERE m.group_id = g.group_id;
ALTER TABLE messages ALTER COLUMN group_seq SET NOT NULL;
CREATE UNIQUE INDEX messages_group_seq ON messages (group_id, group_seq);
DROP INDEX messages_listing;
