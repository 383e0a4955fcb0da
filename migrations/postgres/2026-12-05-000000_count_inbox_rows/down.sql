DROP TRIGGER notification_counted_update ON notification;
DROP TRIGGER notification_counted_delete ON notification;
DROP TRIGGER notification_counted_insert ON notification;
DROP FUNCTION inbox_count_updated();
DROP FUNCTION inbox_count_deleted();
DROP FUNCTION inbox_count_inserted();
DROP TABLE inbox_count_change;
DROP TABLE inbox_count;
