-- Signals (live updates) as they were published: written in the transaction that causes them, so
-- that every instance can fetch them by id when told over NOTIFY (a NOTIFY payload is limited to
-- 8,000 bytes: it carries ids, not bodies), and a reconnecting event-stream client can resume
-- after the last id it saw. Kept for a short window only (notifications.signals.replayWindow).
CREATE TABLE signal_event (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The entity ref the signal is for; NULL for everyone.
    recipient varchar(255),
    channel   varchar(255) NOT NULL,
    -- The message as JSON text, as it goes on the wire.
    message   text         NOT NULL,
    created   timestamptz  NOT NULL
);
-- The pruning of the window.
CREATE INDEX signal_event_created_idx ON signal_event (created);
