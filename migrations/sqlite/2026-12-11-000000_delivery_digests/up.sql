-- Mirrors migrations/postgres (see there), with `status` first in the indexes: without
-- statistics (the service never runs ANALYZE), SQLite's planner prefers the index matching the
-- most equalities, and a due index on run_at alone would lose to delivery_status_idx.
ALTER TABLE delivery ADD COLUMN digest_at TEXT;
ALTER TABLE delivery ADD COLUMN quiet_until TEXT;
CREATE INDEX delivery_digest_due_idx ON delivery (status, run_at) WHERE status = 'pending' AND digest_at IS NOT NULL;
CREATE INDEX delivery_digest_user_idx ON delivery (status, user_ref, run_at) WHERE status = 'pending' AND digest_at IS NOT NULL;
-- The abandon sweep of every poll looks for claimed rows whose lease ran out: few among the
-- pending ones, which held and kept rows make many.
CREATE INDEX delivery_leased_idx ON delivery (status, locked_until) WHERE status = 'pending' AND locked_until IS NOT NULL;
