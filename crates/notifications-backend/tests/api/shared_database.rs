//! Sharing a database server with Backstage: Backstage's `backend.database` conventions
//! (division mode, prefix, ensureExists) on a real PostgreSQL, and the refusal to migrate a
//! database (or schema) that holds upstream's notifications tables, on both databases.

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use serde_json::json;
use tokio::process::Command;

use crate::on_both_databases;
use crate::support::{
    BIN, DbKind, SERVICE_TOKEN, TestDb, config_files_with, serve_binary, user_token,
};

/// What upstream's knex migrations leave behind, reduced to what matters here (and written to
/// run on both databases): knex's bookkeeping with upstream's first migration, and its
/// `notification` table with a row.
const KNEX_BOOKKEEPING: &str = "
CREATE TABLE knex_migrations (id integer PRIMARY KEY, name varchar(255), batch integer, migration_time timestamp);
INSERT INTO knex_migrations VALUES (1, '20231215_init.js', 1, CURRENT_TIMESTAMP);
";
const UPSTREAM_NOTIFICATION: &str = r#"
CREATE TABLE notification ("id" varchar(36) PRIMARY KEY, "user" varchar(255) NOT NULL,
  title varchar(255) NOT NULL, description text, severity varchar(8) NOT NULL, link text NOT NULL,
  origin varchar(255) NOT NULL, scope varchar(255), topic varchar(255),
  created timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, updated timestamp, "read" timestamp,
  done timestamp, saved timestamp);
INSERT INTO notification (id, "user", title, severity, link, origin)
  VALUES ('1b1f6d1e-8a43-4a8e-9f5c-3c1a2b3c4d5e', 'user:default/mock', 'upstream', 'normal', '/x', 'plugin:test');
"#;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The `count(*) AS n` that `sql` selects.
fn count(db: &TestDb, sql: &str) -> i64 {
    let query = diesel::sql_query(sql);
    match db {
        TestDb::Sqlite { dir } => {
            let path = dir.path().join("test.sqlite");
            let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
            query.get_result::<Count>(&mut conn).unwrap().n
        }
        TestDb::Postgres { url, .. } => {
            let mut conn = PgConnection::establish(url).unwrap();
            query.get_result::<Count>(&mut conn).unwrap().n
        }
    }
}

/// Whether `table` exists (on PostgreSQL, in `schema`).
fn has_table(db: &TestDb, schema: &str, table: &str) -> bool {
    let sql = match db.kind() {
        DbKind::Sqlite => {
            format!(
                "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
            )
        }
        DbKind::Postgres => format!(
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = '{schema}' AND table_name = '{table}'"
        ),
    };
    count(db, &sql) == 1
}

/// Runs the binary's `command` (`migrate`, or a `serve` expected to stop) on `database_yaml`;
/// whether it succeeded, and what it wrote to stderr.
async fn run(dir: &Path, database_yaml: &str, command: &str) -> (bool, String) {
    let configs = config_files_with(dir, database_yaml, "");
    let mut binary = Command::new(BIN);
    binary
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    for config in &configs {
        binary.arg("--config").arg(config);
    }
    binary.arg("--data-dir").arg(dir.join("data")).arg(command);
    let out = tokio::time::timeout(Duration::from_secs(60), binary.output())
        .await
        .expect("the command stops")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Upstream's tables are left as they are: no table of ours beside them, their row kept.
fn assert_untouched(db: &TestDb, schema: &str) {
    assert!(!has_table(db, schema, "__diesel_schema_migrations"));
    assert!(!has_table(db, schema, "broadcast"));
    let table = match db.kind() {
        DbKind::Sqlite => "notification".to_owned(),
        DbKind::Postgres => format!("{schema}.notification"),
    };
    assert_eq!(
        count(
            db,
            &format!("SELECT count(*) AS n FROM {table} WHERE title = 'upstream' AND done IS NULL")
        ),
        1
    );
}

async fn upstream_tables_stop_serve_and_migrate(kind: DbKind) {
    for (upstream_sql, reason) in [
        (
            format!("{KNEX_BOOKKEEPING}{UPSTREAM_NOTIFICATION}"),
            "its knex_migrations table records upstream's migration 20231215_init.js",
        ),
        // Without knex's bookkeeping, the table alone gives it away.
        (
            UPSTREAM_NOTIFICATION.to_owned(),
            "it has a notification table but no __diesel_schema_migrations",
        ),
    ] {
        let Some(db) = TestDb::create_empty(kind) else {
            return;
        };
        db.execute(&upstream_sql);
        let dir = tempfile::tempdir().unwrap();
        for command in ["migrate", "serve"] {
            let (ok, stderr) = run(dir.path(), &db.config_yaml(), command).await;
            assert!(!ok, "{command} refuses: {stderr}");
            assert!(stderr.contains(reason), "{command}: {stderr}");
            assert!(
                stderr.contains("it holds the tables of Backstage's own notifications plugin"),
                "{command}: {stderr}"
            );
            assert!(
                stderr.contains("`notifications-backend import`"),
                "{command}: {stderr}"
            );
            assert!(
                stderr.contains("backstage_plugin_notifications_service"),
                "{command}: {stderr}"
            );
            assert_untouched(&db, "public");
        }
    }
}

on_both_databases!(upstream_tables_stop_serve_and_migrate);

/// The PostgreSQL test database as a connection map, and the cluster's address as a URL
/// without a database.
fn postgres_parts(db: &TestDb) -> Option<(String, String)> {
    let TestDb::Postgres { url, admin_url, .. } = db else {
        return None;
    };
    let mut server = url::Url::parse(admin_url).unwrap();
    server.set_path("");
    Some((
        url.clone(),
        server.to_string().trim_end_matches('/').to_owned(),
    ))
}

/// Schema mode: this service's tables go to a schema of its own in the named database, beside
/// upstream's schema (which Backstage names after the plugin, `notifications`), and work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_mode_keeps_to_a_schema_of_its_own() {
    let Some(db) = TestDb::create_empty(DbKind::Postgres) else {
        return;
    };
    let (url, _) = postgres_parts(&db).unwrap();
    db.execute(&format!(
        "CREATE SCHEMA notifications; SET search_path TO notifications; {KNEX_BOOKKEEPING}{UPSTREAM_NOTIFICATION}"
    ));
    let dir = tempfile::tempdir().unwrap();
    let database = format!(
        "backend:\n  database:\n    client: pg\n    pluginDivisionMode: schema\n    connection: '{url}'\n"
    );
    let configs = config_files_with(dir.path(), &database, "");
    let (child, api) = serve_binary(dir.path(), &configs, &[]).await;
    let sent = api
        .post(
            "",
            SERVICE_TOKEN,
            &json!({"recipients": {"type": "entity", "entityRef": "user:default/mock"},
                    "payload": {"title": "ours"}}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let inbox = api
        .get("/notifications", &user_token("user:default/mock"))
        .await;
    assert_eq!(inbox.body["totalCount"], 1, "{}", inbox.text);
    assert_eq!(inbox.body["notifications"][0]["payload"]["title"], "ours");
    drop(child);

    assert!(has_table(
        &db,
        "notifications_service",
        "__diesel_schema_migrations"
    ));
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM notifications_service.notification"
        ),
        1
    );
    assert!(
        !has_table(&db, "public", "notification"),
        "nothing in public"
    );
    assert_untouched_schema(&db);

    // A schema of ours that holds upstream's tables is refused like a database.
    db.execute(&format!(
        "CREATE SCHEMA x_notifications_service; SET search_path TO x_notifications_service; {KNEX_BOOKKEEPING}{UPSTREAM_NOTIFICATION}"
    ));
    let refused = format!("{database}    schemaPrefix: x_\n");
    let (ok, stderr) = run(dir.path(), &refused, "migrate").await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("PostgreSQL database notif_test_")
            && stderr.contains("schema x_notifications_service"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`notifications-backend import`"),
        "{stderr}"
    );
    assert_untouched(&db, "x_notifications_service");

    // With ensureExists false a missing schema is not created, and the error says so.
    let missing = format!("{database}    schemaPrefix: missing_\n    ensureExists: false\n");
    let (ok, stderr) = run(dir.path(), &missing, "migrate").await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("schema missing_notifications_service does not exist, and it is not created because backend.database.ensureExists is false"),
        "{stderr}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'missing_notifications_service'"
        ),
        0
    );
}

/// Upstream's schema in schema mode (`notifications`) is as it was.
fn assert_untouched_schema(db: &TestDb) {
    assert_untouched(db, "notifications");
    assert_eq!(
        count(
            db,
            "SELECT count(*) AS n FROM notifications.knex_migrations"
        ),
        1
    );
}

/// Database mode: without a database named, `prefix` + `notifications_service` is created;
/// with `ensureExists: false` a missing database is an error that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_names_the_database_and_ensure_exists_false_creates_none() {
    let Some(db) = TestDb::create_empty(DbKind::Postgres) else {
        return;
    };
    let (_, server) = postgres_parts(&db).unwrap();
    let prefix = format!("t{}_", uuid::Uuid::new_v4().simple());
    let name = format!("{prefix}notifications_service");
    let admin = match &db {
        TestDb::Postgres { admin_url, .. } => admin_url.clone(),
        TestDb::Sqlite { .. } => unreachable!(),
    };
    let exists = |name: &str| {
        let mut conn = PgConnection::establish(&admin).unwrap();
        diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"
        ))
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n == 1
    };
    let dir = tempfile::tempdir().unwrap();

    let missing = format!(
        "backend:\n  database:\n    client: pg\n    prefix: {prefix}\n    ensureExists: false\n    connection: '{server}'\n"
    );
    let (ok, stderr) = run(dir.path(), &missing, "migrate").await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(&format!("database \"{name}\" does not exist; it is not created because backend.database.ensureExists is false")),
        "{stderr}"
    );
    assert!(!exists(&name));

    let created = format!(
        "backend:\n  database:\n    client: pg\n    prefix: {prefix}\n    connection: '{server}'\n"
    );
    let (ok, stderr) = run(dir.path(), &created, "migrate").await;
    let drop_it = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let cleanup = || {
        PgConnection::establish(&admin)
            .unwrap()
            .batch_execute(&drop_it)
            .unwrap();
    };
    if !ok {
        cleanup();
        panic!("migrate creates the database: {stderr}");
    }
    let found = exists(&name);
    cleanup();
    assert!(found, "{stderr}");
    assert!(
        stderr.contains(&format!("PostgreSQL database {name}")),
        "{stderr}"
    );
}

/// `role`: what this service creates (its schema and tables) belongs to that role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_owns_what_is_created() {
    let Some(db) = TestDb::create_empty(DbKind::Postgres) else {
        return;
    };
    let (url, _) = postgres_parts(&db).unwrap();
    let TestDb::Postgres {
        admin_url, name, ..
    } = &db
    else {
        unreachable!()
    };
    let role = format!("owner_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(admin_url).unwrap();
    // The role creates in the database (its schema, pg_trgm), as Backstage's would have to.
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} NOLOGIN; GRANT CREATE ON DATABASE {name} TO {role}"
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database = format!(
        "backend:\n  database:\n    client: pg\n    pluginDivisionMode: schema\n    role: {role}\n    connection: '{url}'\n"
    );
    let (ok, stderr) = run(dir.path(), &database, "migrate").await;
    let owners = |sql: &str| count(&db, sql);
    let schema_owned = owners(&format!(
        "SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'notifications_service' AND pg_get_userbyid(nspowner) = '{role}'"
    ));
    let tables_owned = owners(&format!(
        "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'notifications_service' AND tableowner = '{role}'"
    ));
    let tables =
        owners("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'notifications_service'");
    drop(db);
    admin.batch_execute(&format!("DROP ROLE {role}")).unwrap();
    assert!(ok, "{stderr}");
    assert_eq!(schema_owned, 1);
    assert!(tables > 5, "{tables} tables");
    assert_eq!(tables_owned, tables);
}
