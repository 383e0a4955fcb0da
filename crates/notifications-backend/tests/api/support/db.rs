//! A database of its own for every test.

use std::path::Path;
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::{Connection, ExpressionMethods, PgConnection, QueryDsl, RunQueryDsl};
use notifications_backend::testing::db::{
    Db, DbConnection, PgSession, PoolOptions, Target, migrations,
};
use notifications_backend::testing::store::Store;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

pub enum TestDb {
    Sqlite {
        dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

const PG_URL_VAR: &str = "NOTIFICATIONS_TEST_PG_URL";

/// What a new PostgreSQL test database holds.
#[derive(Clone, Copy)]
enum Schema {
    Migrated,
    Empty,
}

/// The name of the migrated database every PostgreSQL test database is copied from, made once
/// per cluster and migrations (its name carries their digest), so that each test does not run
/// every migration again. Built under another name and renamed when complete, under an advisory
/// lock, so that test processes running at once never copy a half-built one.
fn template(admin_url: &str) -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres");
        let mut folders: Vec<_> = std::fs::read_dir(&dir)
            .expect("the PostgreSQL migrations")
            .map(|e| e.expect("a migration folder").path())
            .collect();
        folders.sort();
        let mut digest = Sha256::new();
        for folder in &folders {
            digest.update(folder.file_name().unwrap().as_encoded_bytes());
            digest.update(std::fs::read(folder.join("up.sql")).expect("up.sql"));
        }
        let digest: String = digest.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = format!("notif_template_{digest}");
        let mut admin = PgConnection::establish(admin_url).expect("connect to the test cluster");
        admin
            .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
            .expect("lock");
        let exists = diesel::select(diesel::dsl::exists(
            pg_database::table.filter(pg_database::datname.eq(&name)),
        ))
        .get_result::<bool>(&mut admin)
        .expect("look for the template");
        if !exists {
            let building = format!("{name}_building");
            // A run that stopped half-way leaves it behind; each statement runs on its own.
            for statement in [
                format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
                format!("CREATE DATABASE {building}"),
            ] {
                admin
                    .batch_execute(&statement)
                    .expect("create the template");
            }
            let mut url = url::Url::parse(admin_url).expect("admin URL");
            url.set_path(&format!("/{building}"));
            let conn = PgConnection::establish(url.as_str()).expect("connect to the template");
            migrations::run_pending(&mut DbConnection::Postgres(conn))
                .expect("migrate the template");
            admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .expect("name the template");
        }
        admin
            .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
            .expect("unlock");
        name
    })
}

/// Serialises building the template between test processes ("notiftpl" in ASCII).
const TEMPLATE_LOCK_KEY: i64 = 0x6e6f_7469_6674_706c;

diesel::table! {
    pg_database (datname) {
        datname -> Text,
    }
}

/// Whether this is a CI run (where PostgreSQL tests must not be skipped).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1" | "yes"))
}

impl TestDb {
    /// `None` when PostgreSQL is wanted but not configured (outside CI). A PostgreSQL database
    /// is a copy of the migrated template; a SQLite one starts empty (migrating it is quick).
    pub fn create(kind: DbKind) -> Option<Self> {
        Self::create_with(kind, Schema::Migrated)
    }

    /// An empty database, for tests of migrating itself.
    pub fn create_empty(kind: DbKind) -> Option<Self> {
        Self::create_with(kind, Schema::Empty)
    }

    fn create_with(kind: DbKind, schema: Schema) -> Option<Self> {
        match kind {
            DbKind::Sqlite => Some(Self::Sqlite {
                dir: tempfile::tempdir().expect("temp dir"),
            }),
            DbKind::Postgres => {
                let Ok(admin_url) = std::env::var(PG_URL_VAR) else {
                    assert!(
                        !in_ci(),
                        "{PG_URL_VAR} is not set: in CI the PostgreSQL tests must run (use `cargo xtask test`)"
                    );
                    eprintln!(
                        "skipping a PostgreSQL test: {PG_URL_VAR} is not set (run `cargo xtask test`)"
                    );
                    return None;
                };
                let name = format!("notif_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin =
                    PgConnection::establish(&admin_url).expect("connect to the test cluster");
                let create = match schema {
                    Schema::Migrated => {
                        format!("CREATE DATABASE {name} TEMPLATE {}", template(&admin_url))
                    }
                    Schema::Empty => format!("CREATE DATABASE {name}"),
                };
                admin.batch_execute(&create).expect("create test database");
                let mut url = url::Url::parse(&admin_url).expect("admin URL");
                url.set_path(&format!("/{name}"));
                Some(Self::Postgres {
                    admin_url,
                    name,
                    url: url.to_string(),
                })
            }
        }
    }

    /// A store on this database, beside the backend's own pool.
    pub fn store(&self) -> Store {
        let target = match self {
            Self::Sqlite { dir } => Target::Sqlite(
                dir.path()
                    .join("test.sqlite")
                    .to_string_lossy()
                    .into_owned(),
            ),
            Self::Postgres { url, .. } => Target::Postgres {
                url: url.clone(),
                session: PgSession::default(),
            },
        };
        let mut options = PoolOptions::for_target(&target);
        options.max_size = 2;
        Store::new(Db::open(target, &options).expect("open the test database"))
    }

    /// Runs `sql` (several statements) on a connection of its own, e.g. to seed many rows at once.
    pub fn execute(&self, sql: &str) {
        match self {
            Self::Sqlite { dir } => {
                let path = dir.path().join("test.sqlite");
                let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .expect("open the test database");
                conn.batch_execute("PRAGMA busy_timeout = 10000;")
                    .and_then(|()| conn.batch_execute(sql))
                    .expect("SQL runs");
            }
            Self::Postgres { url, .. } => PgConnection::establish(url)
                .expect("connect to the test database")
                .batch_execute(sql)
                .expect("SQL runs"),
        }
    }

    /// The names of `table`'s indexes, sorted (the automatic ones of SQLite's constraints
    /// left out).
    pub fn index_names(&self, table: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let names: Vec<Name> = match self {
            Self::Sqlite { dir } => {
                let path = dir.path().join("test.sqlite");
                diesel::sql_query(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
                     AND tbl_name = ? ORDER BY name",
                )
                .bind::<diesel::sql_types::Text, _>(table)
                .load(
                    &mut diesel::SqliteConnection::establish(&path.to_string_lossy())
                        .expect("open the test database"),
                )
            }
            Self::Postgres { url, .. } => diesel::sql_query(
                "SELECT CAST(indexname AS TEXT) AS name FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename = $1 ORDER BY indexname",
            )
            .bind::<diesel::sql_types::Text, _>(table)
            .load(&mut PgConnection::establish(url).expect("connect to the test database")),
        }
        .expect("list the indexes");
        names.into_iter().map(|n| n.name).collect()
    }

    pub fn kind(&self) -> DbKind {
        match self {
            Self::Sqlite { .. } => DbKind::Sqlite,
            Self::Postgres { .. } => DbKind::Postgres,
        }
    }

    /// The `backend.database` section for this database.
    pub fn config_yaml(&self) -> String {
        match self {
            Self::Sqlite { dir } => format!(
                "backend:\n  database:\n    client: better-sqlite3\n    connection: '{}'\n",
                dir.path().join("test.sqlite").display()
            ),
            Self::Postgres { url, .. } => format!(
                "backend:\n  database:\n    client: pg\n    connection: '{url}'\n    knexConfig:\n      pool: {{ max: 4 }}\n"
            ),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}
