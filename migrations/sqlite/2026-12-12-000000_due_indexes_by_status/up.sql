-- Without statistics (the service never runs ANALYZE), SQLite's planner prefers an index that
-- matches an equality to one that only bounds a range: every claim of the delivery worker read
-- all pending rows through delivery_status_idx (status = 'pending'), and the plain claim sorted
-- them by run_at. With `status` first, the due index matches the equality and then bounds
-- run_at: it wins, and the plain claim walks the due rows in order and stops after its batch.
-- delivery_due_idx no longer holds the rows kept for a digest (the plain claim takes none), so
-- that the digest statements have one index that fits them, not two of the same cost.
-- PostgreSQL keeps its index (see there).
DROP INDEX delivery_due_idx;
CREATE INDEX delivery_due_idx ON delivery (status, run_at)
    WHERE status = 'pending' AND digest_at IS NULL;
