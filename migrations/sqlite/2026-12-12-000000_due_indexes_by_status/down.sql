DROP INDEX delivery_due_idx;
CREATE INDEX delivery_due_idx ON delivery (run_at) WHERE status = 'pending';
