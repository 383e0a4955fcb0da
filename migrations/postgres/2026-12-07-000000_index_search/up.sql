-- Search (`lower(title|description) LIKE lower('%text%')`) finds its candidates in trigram
-- indexes instead of reading every row; the LIKE stays and decides. pg_trgm is a trusted
-- extension: a role with CREATE on the database may install it. Where it cannot (a server without
-- the contrib modules, a role without that right), this migration skips the indexes and search
-- keeps working by reading the rows it filters (see the README's PostgreSQL section).
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg_trgm cannot be installed (%): searches will read every row they filter; '
        'install it (CREATE EXTENSION pg_trgm) and create the indexes of migration '
        '2026-12-07-000000_index_search to make them fast', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX notification_title_trgm_idx ON notification '
            'USING gin (lower(title) gin_trgm_ops)';
        EXECUTE 'CREATE INDEX notification_description_trgm_idx ON notification '
            'USING gin (lower(description) gin_trgm_ops)';
    END IF;
END
$$;
