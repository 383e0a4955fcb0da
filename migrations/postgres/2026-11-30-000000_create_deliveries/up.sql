-- Deliveries to processors' channels (e-mail, Slack, webhooks): written in the transaction that
-- stores the notification, so that nothing accepted is lost; workers on any instance claim due
-- rows (FOR UPDATE SKIP LOCKED) and record the outcome.
CREATE TABLE delivery (
    id              uuid PRIMARY KEY,
    notification_id uuid         NOT NULL,
    -- The recipient; NULL for a broadcast.
    user_ref        varchar(255),
    -- The processor's name (its settings channel).
    channel         varchar(255) NOT NULL,
    -- The notification as stored (or as it would have been, when the user's Web channel is
    -- off) and the send's options: what the processor's post_process receives.
    notification    jsonb        NOT NULL,
    options         jsonb        NOT NULL,
    -- pending, delivered or failed.
    status          varchar(16)  NOT NULL,
    attempts        integer      NOT NULL DEFAULT 0,
    -- Not before this instant (backoff after a failure).
    run_at          timestamptz  NOT NULL,
    -- A worker holds the row until this instant; past it (the worker died), any may take it.
    locked_until    timestamptz,
    last_error      text,
    created         timestamptz  NOT NULL,
    updated         timestamptz
);
-- What workers look for: due pending rows, oldest first.
CREATE INDEX delivery_due_idx ON delivery (run_at) WHERE status = 'pending';
-- Outcomes per notification and channel.
CREATE INDEX delivery_notification_idx ON delivery (notification_id, channel);
-- Failed rows for the operator, and the cleanup of finished rows.
CREATE INDEX delivery_status_idx ON delivery (status, updated);
