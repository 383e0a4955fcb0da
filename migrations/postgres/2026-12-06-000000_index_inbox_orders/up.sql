-- Inbox pages walk an index and stop after offset + limit rows, whatever the order and filters.
-- Every list order is `<field> <dir> [NULLS LAST], created <dir>, id <dir>` (the tie-break follows
-- the first term), so one index (user_ref, <field>, created, id) serves both directions, the
-- `<field> = v` filter ordered by created, and (scanned with `<field> IS NULL`) the NULL part of a
-- nullable field. notification_user_created_idx serves the created order.
CREATE INDEX notification_user_updated_idx  ON notification (user_ref, updated, created, id);
CREATE INDEX notification_user_title_idx    ON notification (user_ref, title, created, id);
CREATE INDEX notification_user_topic_idx    ON notification (user_ref, topic, created, id);
CREATE INDEX notification_user_origin_idx   ON notification (user_ref, origin, created, id);
CREATE INDEX notification_user_severity_idx ON notification (user_ref, severity, created, id);
CREATE INDEX notification_user_read_idx     ON notification (user_ref, read, created, id);
-- read=true, newest first.
CREATE INDEX notification_user_read_created_idx ON notification (user_ref, created, id)
    WHERE read IS NOT NULL;
-- Few rows are saved: a partial index holds them (a send writes no entry into it); the rest of
-- that order walks notification_user_created_idx.
CREATE INDEX notification_user_saved_idx ON notification (user_ref, saved, created, id)
    WHERE saved IS NOT NULL;
-- saved=true, newest first.
CREATE INDEX notification_user_saved_created_idx ON notification (user_ref, created, id)
    WHERE saved IS NOT NULL;

-- Broadcasts: the same orders over the whole table; the reader's state is in
-- broadcast_user_status, whose read / saved rows drive those orders and filters.
CREATE INDEX broadcast_updated_idx  ON broadcast (updated, created, id);
CREATE INDEX broadcast_title_idx    ON broadcast (title, created, id);
CREATE INDEX broadcast_topic_idx    ON broadcast (topic, created, id);
CREATE INDEX broadcast_origin_idx   ON broadcast (origin, created, id);
CREATE INDEX broadcast_severity_idx ON broadcast (severity, created, id);
CREATE INDEX broadcast_user_status_read_idx ON broadcast_user_status (user_ref, read, broadcast_id)
    WHERE read IS NOT NULL;
CREATE INDEX broadcast_user_status_saved_idx ON broadcast_user_status (user_ref, saved, broadcast_id)
    WHERE saved IS NOT NULL;
