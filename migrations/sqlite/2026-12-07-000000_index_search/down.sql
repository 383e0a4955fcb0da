DROP TRIGGER notification_search_update;
DROP TRIGGER notification_search_delete;
DROP TRIGGER notification_search_insert;
DROP TABLE notification_search;
