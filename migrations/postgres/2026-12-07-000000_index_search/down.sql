DROP INDEX IF EXISTS notification_description_trgm_idx;
DROP INDEX IF EXISTS notification_title_trgm_idx;
-- pg_trgm stays installed: other objects of the database may use it.
