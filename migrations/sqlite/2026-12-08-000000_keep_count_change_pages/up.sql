-- PostgreSQL only (its counter changes table); SQLite counts without one. Kept so that both
-- databases have the same list of migrations.
SELECT 1;
