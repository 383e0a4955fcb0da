-- Deliveries held by a user's preferences. digest_at: an e-mail kept for the user's digest that
-- goes out then (plain claims leave these rows alone; the digest claim takes one user's due
-- rows together). quiet_until: held for the user's quiet hours until then (also its run_at).
ALTER TABLE delivery ADD COLUMN digest_at timestamptz;
ALTER TABLE delivery ADD COLUMN quiet_until timestamptz;
CREATE INDEX delivery_digest_due_idx ON delivery (run_at) WHERE status = 'pending' AND digest_at IS NOT NULL;
-- One user's closed window, claimed whole.
CREATE INDEX delivery_digest_user_idx ON delivery (user_ref, run_at) WHERE status = 'pending' AND digest_at IS NOT NULL;
-- The abandon sweep of every poll looks for claimed rows whose lease ran out: few among the
-- pending ones, which held and kept rows make many.
CREATE INDEX delivery_leased_idx ON delivery (locked_until) WHERE status = 'pending' AND locked_until IS NOT NULL;
