-- Upstream's four tables as @backstage/plugin-notifications-backend 0.6.9's knex migrations create
-- them on PostgreSQL (a `pg_dump --schema-only` of a database those migrations made, run by
-- tests/fixtures/import/upstream.js), filled for the `import` bench: :notifications notifications
-- for 5,000 users (a third read, a tenth saved), 100 broadcasts with 1,000 read marks each, and
-- 10,000 settings. Run by psql with `-v notifications=N`.
CREATE TABLE broadcast (
    id uuid NOT NULL PRIMARY KEY, title varchar(255) NOT NULL, description text,
    severity varchar(8) NOT NULL, link text, origin varchar(255) NOT NULL, scope varchar(255),
    topic varchar(255), created timestamptz DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated timestamptz, icon varchar(255));
CREATE TABLE broadcast_user_status (
    broadcast_id uuid NOT NULL REFERENCES broadcast (id) ON DELETE CASCADE,
    "user" varchar(255) NOT NULL, read timestamptz, saved timestamptz,
    CONSTRAINT broadcast_user_idx UNIQUE (broadcast_id, "user"));
CREATE TABLE notification (
    id uuid NOT NULL PRIMARY KEY, "user" varchar(255) NOT NULL, title varchar(255) NOT NULL,
    description text, severity varchar(8) NOT NULL, link text, origin varchar(255) NOT NULL,
    scope varchar(255), topic varchar(255), created timestamptz DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated timestamptz, read timestamptz, saved timestamptz, icon varchar(255));
CREATE TABLE user_settings (
    "user" varchar(255) NOT NULL, channel varchar(255) NOT NULL, origin varchar(255) NOT NULL,
    enabled boolean DEFAULT true NOT NULL, topic varchar(255),
    settings_key_hash varchar(64) NOT NULL CONSTRAINT user_settings_unique_idx UNIQUE);
CREATE INDEX broadcast_cope_origin_idx ON broadcast (scope, origin);
CREATE INDEX notification_scope_origin_idx ON notification (scope, origin);
CREATE INDEX notification_user_idx ON notification ("user");
CREATE INDEX user_settings_user_idx ON user_settings ("user");
INSERT INTO notification (id, "user", title, description, severity, link, origin, topic, created,
                          read, saved)
SELECT gen_random_uuid(), 'user:default/user-' || (i % 5000), 'Build ' || i || ' failed',
       'See the logs of build ' || i, (ARRAY['critical', 'high', 'normal', 'low'])[1 + i % 4],
       '/catalog/default/component/c' || (i % 100), 'external:ci', 'builds',
       now() - make_interval(secs => i), CASE WHEN i % 3 = 0 THEN now() END,
       CASE WHEN i % 10 = 0 THEN now() END
FROM generate_series(1, :notifications) AS i;
INSERT INTO broadcast (id, title, severity, origin, created)
SELECT gen_random_uuid(), 'Maintenance ' || i, 'normal', 'plugin:ops', now() - make_interval(hours => i)
FROM generate_series(1, 100) AS i;
INSERT INTO broadcast_user_status (broadcast_id, "user", read)
SELECT b.id, 'user:default/user-' || u, now() FROM broadcast b, generate_series(1, 1000) AS u;
INSERT INTO user_settings ("user", channel, origin, enabled, settings_key_hash)
SELECT 'user:default/user-' || i, 'Web', 'external:ci', false, md5(i::text) || md5(i::text)
FROM generate_series(1, 10000) AS i;
