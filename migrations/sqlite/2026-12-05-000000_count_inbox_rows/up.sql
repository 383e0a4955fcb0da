-- Mirrors migrations/postgres (see there), with row-level triggers that update the counts in
-- place: SQLite has one writer, so concurrent sends do not queue for a counter row, and the change
-- table PostgreSQL needs for that is left out.
CREATE TABLE inbox_count (
    user_ref TEXT PRIMARY KEY NOT NULL,
    total    INTEGER NOT NULL,
    read     INTEGER NOT NULL
);
INSERT INTO inbox_count (user_ref, total, read)
    SELECT user_ref, COUNT(*), COUNT(read) FROM notification GROUP BY user_ref;

CREATE TRIGGER notification_counted_insert AFTER INSERT ON notification
BEGIN
    INSERT INTO inbox_count (user_ref, total, read)
        VALUES (NEW.user_ref, 1, NEW.read IS NOT NULL)
        ON CONFLICT (user_ref) DO UPDATE SET total = total + 1, read = read + excluded.read;
END;

CREATE TRIGGER notification_counted_delete AFTER DELETE ON notification
BEGIN
    UPDATE inbox_count SET total = total - 1, read = read - (OLD.read IS NOT NULL)
        WHERE user_ref = OLD.user_ref;
END;

CREATE TRIGGER notification_counted_update AFTER UPDATE OF read ON notification
    WHEN (OLD.read IS NULL) <> (NEW.read IS NULL)
BEGIN
    UPDATE inbox_count SET read = read + (CASE WHEN NEW.read IS NULL THEN -1 ELSE 1 END)
        WHERE user_ref = NEW.user_ref;
END;
