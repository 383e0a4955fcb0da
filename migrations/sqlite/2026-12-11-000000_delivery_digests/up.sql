-- Mirrors migrations/postgres (see there).
ALTER TABLE delivery ADD COLUMN digest_at TEXT;
CREATE INDEX delivery_digest_due_idx ON delivery (run_at) WHERE status = 'pending' AND digest_at IS NOT NULL;
