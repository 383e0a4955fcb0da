-- Mirrors migrations/postgres (see there), with an FTS5 trigram index instead of pg_trgm: the
-- candidates of a search of 3 or more characters, which the query checks with its LIKE. It is
-- contentless (the text stays in notification alone) and keyed by notification's rowid, which
-- SQLite keeps across VACUUM for a table with indexes.
CREATE VIRTUAL TABLE notification_search USING fts5 (
    title, description,
    content = '', contentless_delete = 1,
    tokenize = 'trigram case_sensitive 0'
);
INSERT INTO notification_search (rowid, title, description)
    SELECT rowid, title, description FROM notification;

CREATE TRIGGER notification_search_insert AFTER INSERT ON notification
BEGIN
    INSERT INTO notification_search (rowid, title, description)
        VALUES (NEW.rowid, NEW.title, NEW.description);
END;

CREATE TRIGGER notification_search_delete AFTER DELETE ON notification
BEGIN
    DELETE FROM notification_search WHERE rowid = OLD.rowid;
END;

-- A re-send with the same scope may change the text.
CREATE TRIGGER notification_search_update AFTER UPDATE OF title, description ON notification
    WHEN OLD.title IS NOT NEW.title OR OLD.description IS NOT NEW.description
BEGIN
    DELETE FROM notification_search WHERE rowid = OLD.rowid;
    INSERT INTO notification_search (rowid, title, description)
        VALUES (NEW.rowid, NEW.title, NEW.description);
END;
