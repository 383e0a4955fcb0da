DROP INDEX delivery_digest_due_idx;
ALTER TABLE delivery DROP COLUMN digest_at;
