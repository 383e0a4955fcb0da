ALTER TABLE inbox_count_change RESET (vacuum_truncate);
