-- Mirrors migrations/postgres (see there).
CREATE TABLE sign_in_link (
    id      TEXT PRIMARY KEY NOT NULL,
    user_ref TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE INDEX sign_in_link_expires_idx ON sign_in_link (expires);
