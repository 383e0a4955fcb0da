-- Mirrors migrations/postgres (see there), in the types knex gave janus's tables on SQLite.
CREATE TABLE IF NOT EXISTS messages (
    id        char(36)     NOT NULL PRIMARY KEY,
    origin    varchar(255) NOT NULL,
    created   varchar(255),
    title     varchar(255) NOT NULL,
    message   text,
    topic     varchar(255),
    is_system boolean      NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_created_index ON messages (created);
CREATE INDEX IF NOT EXISTS messages_is_system_index ON messages (is_system);

CREATE TABLE IF NOT EXISTS users (
    message_id char(36)     NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    "user"     varchar(255) NOT NULL,
    read       boolean      DEFAULT '0',
    PRIMARY KEY (message_id, "user")
);
CREATE INDEX IF NOT EXISTS users_message_id_index ON users (message_id);
CREATE INDEX IF NOT EXISTS users_user_index ON users ("user");

CREATE TABLE IF NOT EXISTS "groups" (
    message_id char(36)     NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    "group"    varchar(255) NOT NULL,
    PRIMARY KEY (message_id, "group")
);
CREATE INDEX IF NOT EXISTS groups_message_id_index ON "groups" (message_id);
CREATE INDEX IF NOT EXISTS groups_group_index ON "groups" ("group");

-- No primary key, as janus declared it on SQLite.
CREATE TABLE IF NOT EXISTS actions (
    id         char(36)     NOT NULL,
    message_id char(36)     NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    url        varchar(255) NOT NULL,
    title      varchar(255) NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_message_id_index ON actions (message_id);
