-- Indexes that `import` dropped to load an empty `notification` table in bulk, with the SQL that
-- makes each again. The import recreates them when its load ends; a run that was interrupted
-- leaves them here, and the next migrate (every start) recreates them before anything else.
CREATE TABLE deferred_index (
    name TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL
);
