-- Each user's number of notifications and of read ones, kept by triggers in the transaction that
-- changes them, so that the status route and an unfiltered list's totalCount read a few rows
-- instead of counting the whole inbox on every request (a count over 10,000 rows was most of the
-- cost of both). Every change to `notification` goes through the triggers: sends and re-sends
-- (upserts that reset `read`), read marks and the retention cleaner.
CREATE TABLE inbox_count (
    user_ref varchar(255) PRIMARY KEY,
    total    bigint NOT NULL,
    read     bigint NOT NULL
);
-- Instances of the previous version may still be writing (a rolling upgrade): until the
-- triggers exist (this migration's transaction commits), their changes would be in no count.
LOCK TABLE notification IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO inbox_count (user_ref, total, read)
    SELECT user_ref, COUNT(*), COUNT(read) FROM notification GROUP BY user_ref;

-- The triggers append changes here rather than update `inbox_count`: an update would hold the
-- user's counter row until commit, so concurrent sends to one user would queue behind each
-- other's commits. The server folds the changes into `inbox_count` every second; a count is the
-- row plus the changes not folded yet.
CREATE TABLE inbox_count_change (
    user_ref varchar(255) NOT NULL,
    total    bigint NOT NULL,
    read     bigint NOT NULL
);
CREATE INDEX inbox_count_change_user_idx ON inbox_count_change (user_ref);

-- Statement-level, on transition tables: one row per user and statement (a 10,000-member
-- fan-out inserts one statement's worth), not one per notification.
CREATE FUNCTION inbox_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inbox_count_change (user_ref, total, read)
        SELECT user_ref, COUNT(*), COUNT(read) FROM inserted GROUP BY user_ref;
    RETURN NULL;
END $$;
CREATE TRIGGER notification_counted_insert AFTER INSERT ON notification
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION inbox_count_inserted();

CREATE FUNCTION inbox_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inbox_count_change (user_ref, total, read)
        SELECT user_ref, -COUNT(*), -COUNT(read) FROM deleted GROUP BY user_ref;
    RETURN NULL;
END $$;
CREATE TRIGGER notification_counted_delete AFTER DELETE ON notification
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION inbox_count_deleted();

-- Transition tables cannot be combined with `UPDATE OF read`: every update comes here, and only
-- rows whose read mark appeared or went count.
CREATE FUNCTION inbox_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inbox_count_change (user_ref, total, read)
        SELECT n.user_ref, 0, SUM(CASE WHEN n.read IS NULL THEN -1 ELSE 1 END)
        FROM before_rows o JOIN after_rows n ON n.id = o.id
        WHERE (o.read IS NULL) <> (n.read IS NULL)
        GROUP BY n.user_ref;
    RETURN NULL;
END $$;
CREATE TRIGGER notification_counted_update AFTER UPDATE ON notification
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inbox_count_updated();
