-- Mirrors migrations/postgres (see there).
CREATE TABLE idempotency_key (
    origin          TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT    NOT NULL,
    created         TEXT    NOT NULL,
    PRIMARY KEY (origin, idempotency_key)
);
CREATE INDEX idempotency_key_created_idx ON idempotency_key (created);
