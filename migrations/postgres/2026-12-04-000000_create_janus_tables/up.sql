-- The janus-idp notifications API's own tables (the legacy contract, section 2.1), with the
-- names, columns and index names janus 1.x created through knex. `IF NOT EXISTS`: a database
-- janus already used is adopted as it is, its rows included.
CREATE TABLE IF NOT EXISTS messages (
    id        uuid         NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    origin    varchar(255) NOT NULL,
    -- An ISO 8601 string with milliseconds and Z, set by the application: janus compares and
    -- sorts it as text.
    created   varchar(255),
    title     varchar(255) NOT NULL,
    message   text,
    topic     varchar(255),
    is_system boolean      NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_created_index ON messages (created);
CREATE INDEX IF NOT EXISTS messages_is_system_index ON messages (is_system);

-- The recipients of targeted messages, and every user's read state of any message.
CREATE TABLE IF NOT EXISTS users (
    message_id uuid         NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    "user"     varchar(255) NOT NULL,
    read       boolean      DEFAULT false,
    PRIMARY KEY (message_id, "user")
);
CREATE INDEX IF NOT EXISTS users_message_id_index ON users (message_id);
CREATE INDEX IF NOT EXISTS users_user_index ON users ("user");

CREATE TABLE IF NOT EXISTS groups (
    message_id uuid         NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    "group"    varchar(255) NOT NULL,
    PRIMARY KEY (message_id, "group")
);
CREATE INDEX IF NOT EXISTS groups_message_id_index ON groups (message_id);
CREATE INDEX IF NOT EXISTS groups_group_index ON groups ("group");

CREATE TABLE IF NOT EXISTS actions (
    id         uuid         NOT NULL DEFAULT gen_random_uuid(),
    message_id uuid         NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    url        varchar(255) NOT NULL,
    title      varchar(255) NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_message_id_index ON actions (message_id);
