-- A user's delivery preferences (digests, time zone, quiet hours): the validated JSON document
-- of `PUT /preferences`, read and written whole. No row: the defaults.
CREATE TABLE user_preferences (
    user_ref varchar(255) PRIMARY KEY NOT NULL,
    preferences TEXT NOT NULL
);
