-- Mirrors migrations/postgres (see there). AUTOINCREMENT: an id is never reused, even after the
-- newest rows were pruned, so that "after this id" stays meaningful to resuming clients.
CREATE TABLE signal_event (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT,
    channel   TEXT NOT NULL,
    message   TEXT NOT NULL,
    created   TEXT NOT NULL
);
CREATE INDEX signal_event_created_idx ON signal_event (created);
