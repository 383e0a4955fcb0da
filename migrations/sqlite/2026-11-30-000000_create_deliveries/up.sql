-- Mirrors migrations/postgres (see there). SQLite has one writer at a time, so one worker per
-- database claims rows inside an immediate transaction.
CREATE TABLE delivery (
    id              TEXT PRIMARY KEY NOT NULL,
    notification_id TEXT    NOT NULL,
    user_ref        TEXT,
    channel         TEXT    NOT NULL,
    notification    TEXT    NOT NULL,
    options         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    run_at          TEXT    NOT NULL,
    locked_until    TEXT,
    last_error      TEXT,
    created         TEXT    NOT NULL,
    updated         TEXT
);
CREATE INDEX delivery_due_idx ON delivery (run_at) WHERE status = 'pending';
CREATE INDEX delivery_notification_idx ON delivery (notification_id, channel);
CREATE INDEX delivery_status_idx ON delivery (status, updated);
