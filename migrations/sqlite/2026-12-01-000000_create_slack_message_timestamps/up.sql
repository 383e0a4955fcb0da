-- Mirrors migrations/postgres (see there).
CREATE TABLE slack_message_timestamp (
    origin          TEXT NOT NULL,
    scope           TEXT NOT NULL,
    channel         TEXT NOT NULL,
    message_channel TEXT NOT NULL,
    ts              TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (origin, scope, channel)
);
CREATE INDEX slack_message_timestamp_created_idx ON slack_message_timestamp (created_at);
