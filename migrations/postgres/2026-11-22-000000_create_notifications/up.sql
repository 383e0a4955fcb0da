-- Notifications addressed to one user: one row per (user, notification).
CREATE TABLE notification (
    id          uuid PRIMARY KEY,
    user_ref    varchar(255) NOT NULL,
    title       varchar(255) NOT NULL,
    description text,
    severity    varchar(8)   NOT NULL,
    link        text,
    origin      varchar(255) NOT NULL,
    scope       varchar(255),
    topic       varchar(255),
    icon        varchar(255),
    metadata    jsonb,
    created     timestamptz  NOT NULL,
    updated     timestamptz,
    read        timestamptz,
    saved       timestamptz
);
-- The inbox: a user's rows, newest first.
CREATE INDEX notification_user_created_idx ON notification (user_ref, created DESC, id DESC);
-- A re-send with the same origin and scope updates the user's earlier notification; the unique
-- index makes that an atomic upsert even when two senders race.
CREATE UNIQUE INDEX notification_user_scope_idx ON notification (user_ref, origin, scope)
    WHERE scope IS NOT NULL;
-- The retention cleaner deletes by last activity.
CREATE INDEX notification_activity_idx ON notification ((COALESCE(updated, created)));

-- Notifications for everyone: one row each; per-user state lives in broadcast_user_status.
CREATE TABLE broadcast (
    id          uuid PRIMARY KEY,
    title       varchar(255) NOT NULL,
    description text,
    severity    varchar(8)   NOT NULL,
    link        text,
    origin      varchar(255) NOT NULL,
    scope       varchar(255),
    topic       varchar(255),
    icon        varchar(255),
    metadata    jsonb,
    created     timestamptz  NOT NULL,
    updated     timestamptz
);
CREATE INDEX broadcast_created_idx ON broadcast (created DESC, id DESC);
CREATE UNIQUE INDEX broadcast_scope_idx ON broadcast (origin, scope) WHERE scope IS NOT NULL;
CREATE INDEX broadcast_activity_idx ON broadcast ((COALESCE(updated, created)));

-- A user's read/saved state of a broadcast; no row means unread and unsaved.
CREATE TABLE broadcast_user_status (
    broadcast_id uuid         NOT NULL REFERENCES broadcast (id) ON DELETE CASCADE,
    user_ref     varchar(255) NOT NULL,
    read         timestamptz,
    saved        timestamptz,
    PRIMARY KEY (broadcast_id, user_ref)
);
CREATE INDEX broadcast_user_status_user_idx ON broadcast_user_status (user_ref);

-- Per-user switches: channel -> origin -> topic (topic NULL is the origin-level switch).
CREATE TABLE user_settings (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_ref varchar(255) NOT NULL,
    channel  varchar(255) NOT NULL,
    origin   varchar(255) NOT NULL,
    topic    varchar(255),
    enabled  boolean      NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX user_settings_key_idx
    ON user_settings (user_ref, channel, origin, (COALESCE(topic, '')));
