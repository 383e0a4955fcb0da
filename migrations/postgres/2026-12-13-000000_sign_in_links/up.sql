-- Sign-in links (`token --user ... --link`) used, so that each signs in once: its id, whom it
-- signed in, and until when it would have been valid (after which the row may go).
CREATE TABLE sign_in_link (
    id      varchar(64)  PRIMARY KEY,
    user_ref varchar(255) NOT NULL,
    expires timestamptz  NOT NULL
);
CREATE INDEX sign_in_link_expires_idx ON sign_in_link (expires);
