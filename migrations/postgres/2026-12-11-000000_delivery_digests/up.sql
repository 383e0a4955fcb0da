-- E-mail deliveries kept for a user's digest: digest_at is when the digest they wait for goes
-- out (also their run_at, until quiet hours move it on). Plain claims leave these rows alone;
-- the digest claim takes one user's due rows together.
ALTER TABLE delivery ADD COLUMN digest_at timestamptz;
CREATE INDEX delivery_digest_due_idx ON delivery (run_at) WHERE status = 'pending' AND digest_at IS NOT NULL;
