-- The answers to sends made with an Idempotency-Key header: a repeated key from the same origin
-- within 24 hours is answered with the recorded answer instead of sending again. The row is
-- written in the send's own transaction, and the primary key makes two concurrent sends with
-- one key create once (the second waits for the first and replays its answer).
CREATE TABLE idempotency_key (
    origin          varchar(255) NOT NULL,
    idempotency_key varchar(255) NOT NULL,
    -- SHA-256 (hex) of the request as parsed: the same key with another request is refused.
    request_hash    varchar(64)  NOT NULL,
    response_status integer      NOT NULL,
    response_body   text         NOT NULL,
    created         timestamptz  NOT NULL,
    PRIMARY KEY (origin, idempotency_key)
);
-- The cleanup of expired keys.
CREATE INDEX idempotency_key_created_idx ON idempotency_key (created);
