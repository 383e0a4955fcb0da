DROP TRIGGER notification_counted_update;
DROP TRIGGER notification_counted_delete;
DROP TRIGGER notification_counted_insert;
DROP TABLE inbox_count;
