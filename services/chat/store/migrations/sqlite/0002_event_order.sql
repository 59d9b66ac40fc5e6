-- 0002_event_order keeps event times at nanosecond precision, records the
-- membership changes of activities whose group does not exist yet, and
-- nothing else: SQLite commits one writer at a time, so message sequence
-- numbers already follow commit order.

-- event_nanos is the sub-microsecond part of event_time, 0 to 999: the
-- deciding event is the one with the greatest (event_time, event_nanos).
ALTER TABLE group_members ADD COLUMN event_nanos INTEGER NOT NULL DEFAULT 0;

-- One row per activity and user whose group does not exist yet: the latest
-- change by the same rule as group_members, and its notice. CreateGroup
-- applies and deletes the activity's rows.
CREATE TABLE pending_members (
	activity_id TEXT    NOT NULL,
	user_id     TEXT    NOT NULL,
	state       TEXT    NOT NULL CHECK (state IN ('joined', 'left')),
	event_time  INTEGER NOT NULL,
	event_nanos INTEGER NOT NULL,
	notice_text TEXT    NOT NULL,
	notice_key  TEXT,
	PRIMARY KEY (activity_id, user_id)
) STRICT, WITHOUT ROWID;
