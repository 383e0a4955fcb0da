-- Mirrors migrations/postgres (see there).
CREATE INDEX notification_user_read_idx ON notification (user_ref, read);
