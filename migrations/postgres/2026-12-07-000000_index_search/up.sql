-- Search (`lower(title|description) LIKE lower('%text%')`) finds its candidates in trigram
-- indexes instead of reading every row; the LIKE stays and decides. pg_trgm is a trusted
-- extension (PostgreSQL 13 and later): a role with CREATE on the database may install it. Where
-- it cannot be installed or its operator class cannot be found (a server without the contrib
-- modules, a role without that right, the extension in a schema outside the search path), this
-- migration skips the indexes and search keeps working by reading the rows it filters (see the
-- README's PostgreSQL section).
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX notification_title_trgm_idx ON notification
        USING gin (lower(title) gin_trgm_ops);
    CREATE INDEX notification_description_trgm_idx ON notification
        USING gin (lower(description) gin_trgm_ops);
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'no trigram indexes for search (%): searches will read every row they filter; '
        'install pg_trgm and create the indexes of migration 2026-12-07-000000_index_search '
        'to make them fast', SQLERRM;
END
$$;
