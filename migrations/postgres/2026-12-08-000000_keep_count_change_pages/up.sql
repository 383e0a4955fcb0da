-- The counter changes are folded away every second, which leaves the table's pages empty. A
-- vacuum (ours after each fold, or autovacuum) would then cut them off, under an exclusive lock
-- that every count of every user waits behind: a stall of the status route each time.
ALTER TABLE inbox_count_change SET (vacuum_truncate = false);
