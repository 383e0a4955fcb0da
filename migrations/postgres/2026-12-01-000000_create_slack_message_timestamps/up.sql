-- The Slack processor's posted messages, so that a scope re-send edits the message
-- (chat.update) instead of posting a new one. Rows older than 24 hours are ignored and purged.
CREATE TABLE slack_message_timestamp (
    origin          varchar(256) NOT NULL,
    scope           varchar(512) NOT NULL,
    -- The target the message was posted to (channel id or name, user id).
    channel         varchar(255) NOT NULL,
    -- Where Slack says it put the message (a DM's D... id for a user target): chat.update needs it.
    message_channel varchar(255) NOT NULL,
    ts              varchar(64)  NOT NULL,
    created_at      timestamptz  NOT NULL,
    PRIMARY KEY (origin, scope, channel)
);
CREATE INDEX slack_message_timestamp_created_idx ON slack_message_timestamp (created_at);
