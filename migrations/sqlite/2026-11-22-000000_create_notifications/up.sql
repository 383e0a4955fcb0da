-- Mirrors migrations/postgres: ids are hyphenated UUID text, timestamps are UTC RFC 3339 text of
-- fixed width (so they sort as text), metadata is JSON text, booleans are 0/1.

-- Notifications addressed to one user: one row per (user, notification).
CREATE TABLE notification (
    id          TEXT PRIMARY KEY NOT NULL,
    user_ref    TEXT NOT NULL,
    title       TEXT NOT NULL,
    description TEXT,
    severity    TEXT NOT NULL,
    link        TEXT,
    origin      TEXT NOT NULL,
    scope       TEXT,
    topic       TEXT,
    icon        TEXT,
    metadata    TEXT,
    created     TEXT NOT NULL,
    updated     TEXT,
    read        TEXT,
    saved       TEXT
);
-- The inbox: a user's rows, newest first.
CREATE INDEX notification_user_created_idx ON notification (user_ref, created DESC, id DESC);
-- A re-send with the same origin and scope updates the user's earlier notification; the unique
-- index makes that an atomic upsert.
CREATE UNIQUE INDEX notification_user_scope_idx ON notification (user_ref, origin, scope)
    WHERE scope IS NOT NULL;
-- The retention cleaner deletes by last activity.
CREATE INDEX notification_activity_idx ON notification (COALESCE(updated, created));

-- Notifications for everyone: one row each; per-user state lives in broadcast_user_status.
CREATE TABLE broadcast (
    id          TEXT PRIMARY KEY NOT NULL,
    title       TEXT NOT NULL,
    description TEXT,
    severity    TEXT NOT NULL,
    link        TEXT,
    origin      TEXT NOT NULL,
    scope       TEXT,
    topic       TEXT,
    icon        TEXT,
    metadata    TEXT,
    created     TEXT NOT NULL,
    updated     TEXT
);
CREATE INDEX broadcast_created_idx ON broadcast (created DESC, id DESC);
CREATE UNIQUE INDEX broadcast_scope_idx ON broadcast (origin, scope) WHERE scope IS NOT NULL;
CREATE INDEX broadcast_activity_idx ON broadcast (COALESCE(updated, created));

-- A user's read/saved state of a broadcast; no row means unread and unsaved.
CREATE TABLE broadcast_user_status (
    broadcast_id TEXT NOT NULL REFERENCES broadcast (id) ON DELETE CASCADE,
    user_ref     TEXT NOT NULL,
    read         TEXT,
    saved        TEXT,
    PRIMARY KEY (broadcast_id, user_ref)
);
CREATE INDEX broadcast_user_status_user_idx ON broadcast_user_status (user_ref);

-- Per-user switches: channel -> origin -> topic (topic NULL is the origin-level switch).
CREATE TABLE user_settings (
    id       INTEGER PRIMARY KEY NOT NULL,
    user_ref TEXT    NOT NULL,
    channel  TEXT    NOT NULL,
    origin   TEXT    NOT NULL,
    topic    TEXT,
    enabled  BOOLEAN NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX user_settings_key_idx
    ON user_settings (user_ref, channel, origin, COALESCE(topic, ''));
