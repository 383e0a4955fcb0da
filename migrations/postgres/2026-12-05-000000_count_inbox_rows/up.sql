-- Each user's number of notifications and of read ones, kept by triggers in the transaction that
-- changes them, so that the status route and an unfiltered list's totalCount read one row
-- instead of counting the whole inbox on every request (a count over 10,000 rows was most of the
-- cost of both). Every change to `notification` goes through the triggers: sends and re-sends
-- (upserts that reset `read`), read marks and the retention cleaner.
CREATE TABLE inbox_count (
    user_ref varchar(255) PRIMARY KEY,
    total    bigint NOT NULL,
    read     bigint NOT NULL
);
INSERT INTO inbox_count (user_ref, total, read)
    SELECT user_ref, COUNT(*), COUNT(read) FROM notification GROUP BY user_ref;

-- Statement-level, on transition tables: one statement per multi-row insert (a 10,000-member
-- fan-out), not one per row. Counter rows are locked in user order, the order in which sends
-- write their rows, so that a send and the cleaner cannot deadlock on them.
CREATE FUNCTION inbox_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inbox_count (user_ref, total, read)
        SELECT user_ref, COUNT(*), COUNT(read) FROM inserted GROUP BY user_ref ORDER BY user_ref
        ON CONFLICT (user_ref) DO UPDATE
        SET total = inbox_count.total + excluded.total, read = inbox_count.read + excluded.read;
    RETURN NULL;
END $$;
CREATE TRIGGER notification_counted_insert AFTER INSERT ON notification
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION inbox_count_inserted();

CREATE FUNCTION inbox_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM inbox_count WHERE user_ref IN (SELECT user_ref FROM deleted)
        ORDER BY user_ref FOR UPDATE;
    UPDATE inbox_count c SET total = c.total - d.total, read = c.read - d.read
        FROM (SELECT user_ref, COUNT(*) AS total, COUNT(read) AS read
              FROM deleted GROUP BY user_ref) d
        WHERE c.user_ref = d.user_ref;
    RETURN NULL;
END $$;
CREATE TRIGGER notification_counted_delete AFTER DELETE ON notification
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION inbox_count_deleted();

-- Transition tables cannot be combined with `UPDATE OF read`: every update comes here, and only
-- rows whose read mark appeared or went count.
CREATE FUNCTION inbox_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE inbox_count c SET read = c.read + d.delta
        FROM (SELECT n.user_ref, SUM(CASE WHEN n.read IS NULL THEN -1 ELSE 1 END) AS delta
              FROM before_rows o JOIN after_rows n ON n.id = o.id
              WHERE (o.read IS NULL) <> (n.read IS NULL)
              GROUP BY n.user_ref ORDER BY n.user_ref) d
        WHERE c.user_ref = d.user_ref;
    RETURN NULL;
END $$;
CREATE TRIGGER notification_counted_update AFTER UPDATE ON notification
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inbox_count_updated();
