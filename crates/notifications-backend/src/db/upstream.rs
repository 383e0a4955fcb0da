//! Upstream's tables. Backstage's notifications plugin names its tables as this service does
//! (`notification`, `broadcast`, `broadcast_user_status`, `user_settings`), so a database (or
//! schema) that plugin migrated must not be migrated here: this service's migrations would
//! fail half-way on it, or mix their tables with upstream's. Its data is brought over with
//! `notifications-backend import` instead.

use diesel::QueryableByName;
use diesel::RunQueryDsl;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::{BigInt, Text};

use super::DbConnection;

/// The migrations of `@backstage/plugin-notifications-backend` (0.6.x), as knex records them in
/// `knex_migrations.name`; the first is in every version.
const UPSTREAM_MIGRATIONS: &[&str] = &[
    "20231215_init.js",
    "20240221_removeDone.js",
    "20240313_broadcast.js",
    "20240808_settings.js",
    "20240902_addIcon.js",
    "20250317_addTopic.js",
];

/// Where diesel records this service's migrations; created with the first one.
const OUR_BOOKKEEPING: &str = "__diesel_schema_migrations";

/// Why the database (on PostgreSQL, the schema new tables go to) holds upstream's tables, or
/// `None` when it does not: knex's bookkeeping lists one of upstream's migrations, or a
/// `notification` table is there without this service's bookkeeping (which is created before
/// this service's first table, so such a table is someone else's). Reads only.
pub fn upstream_tables(conn: &mut DbConnection) -> diesel::QueryResult<Option<String>> {
    match conn {
        DbConnection::Postgres(pg) => find(pg, |table| {
            // `current_schema()`: where unqualified names go, which is where migrations would
            // create their tables.
            format!(
                "SELECT count(*) AS n FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace \
                 WHERE s.nspname = current_schema() AND c.relname = '{table}'"
            )
        }),
        DbConnection::Sqlite(sqlite) => find(sqlite, |table| {
            format!(
                "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
            )
        }),
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// `count_tables` gives the query that counts the tables (0 or 1) of a name, which is one of
/// the constants here.
fn find<C>(
    conn: &mut C,
    count_tables: impl Fn(&str) -> String,
) -> diesel::QueryResult<Option<String>>
where
    SqlQuery: for<'a> LoadQuery<'a, C, Count> + for<'a> LoadQuery<'a, C, Name>,
{
    let mut exists = |table: &str| -> diesel::QueryResult<bool> {
        let count: Count = diesel::sql_query(count_tables(table)).get_result(conn)?;
        Ok(count.n > 0)
    };
    let knex = exists("knex_migrations")?;
    let notification = exists("notification")?;
    let ours = exists(OUR_BOOKKEEPING)?;
    if knex {
        let names = UPSTREAM_MIGRATIONS
            .iter()
            .map(|name| format!("'{name}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let recorded: Vec<Name> = diesel::sql_query(format!(
            "SELECT name FROM knex_migrations WHERE name IN ({names}) ORDER BY name"
        ))
        .load(conn)?;
        if let Some(first) = recorded.first() {
            return Ok(Some(format!(
                "its knex_migrations table records upstream's migration {}",
                first.name
            )));
        }
    }
    if notification && !ours {
        return Ok(Some(format!(
            "it has a notification table but no {OUR_BOOKKEEPING}, so this service did not create it"
        )));
    }
    Ok(None)
}
