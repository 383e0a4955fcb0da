//! A database of its own for every test.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use notifications_backend::db::{Db, PoolOptions, Target};
use notifications_backend::store::Store;

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

/// Whether this is a CI run (where PostgreSQL tests must not be skipped).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1" | "yes"))
}

impl TestDb {
    /// `None` when PostgreSQL is wanted but not configured (outside CI).
    pub fn create(kind: DbKind) -> Option<Self> {
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
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create test database");
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
            Self::Postgres { url, .. } => Target::Postgres(url.clone()),
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
        {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}
