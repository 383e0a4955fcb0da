DROP TABLE slack_message_timestamp;
