DROP INDEX delivery_leased_idx;
DROP INDEX delivery_digest_user_idx;
DROP INDEX delivery_digest_due_idx;
ALTER TABLE delivery DROP COLUMN quiet_until;
ALTER TABLE delivery DROP COLUMN digest_at;
