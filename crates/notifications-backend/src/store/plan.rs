//! The database's plan for a statement the store runs, for the tests that pin the indexes each
//! statement uses (`tests/api/plans.rs`) and for diagnosis.

use crate::db::{DbConnection, Sql};

/// One line per plan node, as each database words it (`EXPLAIN` on PostgreSQL, `EXPLAIN QUERY
/// PLAN` on SQLite); the statement is not run.
pub(super) fn explain(conn: &mut DbConnection, query: Sql) -> diesel::QueryResult<Vec<String>> {
    use diesel::QueryableByName;
    use diesel::connection::SimpleConnection;

    #[derive(QueryableByName)]
    struct SqlitePlanRow {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        id: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        parent: i32,
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    #[derive(QueryableByName)]
    struct PostgresPlanRow {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    match conn {
        DbConnection::Sqlite(_) => {
            let mut sql = Sql::new("EXPLAIN QUERY PLAN ");
            sql.append(&query).uncacheable();
            // Indented by depth, as the sqlite3 shell shows it (parents come first).
            let mut depths = std::collections::HashMap::new();
            Ok(sql
                .load::<SqlitePlanRow>(conn)?
                .into_iter()
                .map(|r| {
                    let depth = depths.get(&r.parent).map_or(0, |d| d + 1);
                    depths.insert(r.id, depth);
                    format!("{}{}", "  ".repeat(depth), r.detail)
                })
                .collect())
        }
        DbConnection::Postgres(_) => {
            // The plan the service runs: a plain EXPLAIN plans for the bound values, while the
            // service's connections reuse one generic plan per statement (`db/connection.rs`),
            // unless the read asked for its own (`store/list/search.rs`). EXPLAIN EXECUTE of a
            // prepared statement follows that setting, as the service's statements do.
            let (text, types, values) = query.to_postgres_text();
            // A name of its own per call: a failed call may leave its statement behind (a
            // DEALLOCATE cannot run in an aborted transaction), and must not fail the next.
            static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let name = format!(
                "explained_{}",
                CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            conn.batch_execute(&format!("PREPARE {name} ({}) AS {text}", types.join(", ")))?;
            let mut explain = format!("EXPLAIN EXECUTE {name}");
            if !values.is_empty() {
                explain.push_str(&format!("({})", values.join(", ")));
            }
            let mut sql = Sql::new(&explain);
            sql.uncacheable();
            let lines = sql.load::<PostgresPlanRow>(conn);
            conn.batch_execute(&format!("DEALLOCATE {name}"))?;
            Ok(lines?.into_iter().map(|r| r.line).collect())
        }
    }
}
