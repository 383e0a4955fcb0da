DROP TABLE user_settings;
DROP TABLE broadcast_user_status;
DROP TABLE broadcast;
DROP TABLE notification;
