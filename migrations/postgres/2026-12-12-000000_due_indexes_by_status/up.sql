-- SQLite only (its planner needs `status` first in the due index; see there). PostgreSQL plans
-- by statistics and walks the partial indexes as they are (tests/api/plans.rs), and instances of
-- earlier versions, which may run beside newer ones, keep claiming through delivery_due_idx.
-- Kept so that both databases have the same list of migrations.
SELECT 1;
