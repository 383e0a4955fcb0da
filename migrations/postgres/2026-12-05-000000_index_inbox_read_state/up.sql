-- The status route counts a user's rows and their read ones. With `read` in the index both counts
-- come from the index alone, instead of visiting every row of the inbox (a 10,000-row inbox took
-- SQLite ~80 ms per status under load); it also serves the `read=true|false` list filter.
CREATE INDEX notification_user_read_idx ON notification (user_ref, read);
