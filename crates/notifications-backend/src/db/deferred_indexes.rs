//! Secondary indexes dropped for a bulk load and made again after it. Filling an empty table
//! and then building its indexes once is several times faster than maintaining thirteen
//! indexes row by row (`import`'s load; see docs/benchmarks.md). The SQL that makes each index
//! is kept in `deferred_index` in the same transaction that drops it, so an interrupted load
//! loses none: [`restore`] runs at every migrate, before the migrations.
//!
//! Only non-unique indexes are dropped: the primary key and the unique scope key decide what
//! an insert does (`ON CONFLICT`), and stay.

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;

use super::{Bind, DbConnection, Sql, write_transaction};

#[derive(diesel::QueryableByName)]
struct Index {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    definition: String,
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Definition {
    #[diesel(sql_type = Text)]
    definition: String,
}

/// Drops the non-unique indexes of `table` (in the connection's schema), recording how to make
/// each again; returns their names. One transaction: all are dropped and recorded, or none.
pub fn defer(conn: &mut DbConnection, table: &str) -> diesel::QueryResult<Vec<String>> {
    write_transaction(conn, |conn| {
        let mut query = match conn {
            // `to_regclass` resolves the name through the search path, as the service's own
            // statements do.
            DbConnection::Postgres(_) => Sql::new(
                "SELECT CAST(c.relname AS TEXT) AS name, \
                 pg_get_indexdef(i.indexrelid) AS definition \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 WHERE i.indrelid = to_regclass(",
            ),
            // `sql` is NULL for the automatic indexes of PRIMARY KEY and UNIQUE constraints.
            DbConnection::Sqlite(_) => Sql::new(
                "SELECT name, sql AS definition FROM sqlite_master \
                 WHERE type = 'index' AND sql IS NOT NULL AND tbl_name = ",
            ),
        };
        query.bind(Bind::Text(table.to_owned()));
        query.push(match conn {
            DbConnection::Postgres(_) => ") AND NOT i.indisunique ORDER BY 1",
            DbConnection::Sqlite(_) => " AND upper(sql) NOT LIKE 'CREATE UNIQUE%' ORDER BY 1",
        });
        let indexes: Vec<Index> = query.load(conn)?;
        for index in &indexes {
            let mut record = Sql::new("INSERT INTO deferred_index (name, definition) VALUES (");
            record
                .bind(Bind::Text(index.name.clone()))
                .push(", ")
                .bind(Bind::Text(index.definition.clone()))
                .push(")");
            record.execute(conn)?;
            conn.batch_execute(&format!(
                "DROP INDEX {}",
                super::quote_identifier(&index.name)
            ))?;
        }
        Ok(indexes.into_iter().map(|i| i.name).collect())
    })
}

/// The indexes dropped and not made again yet, the slowest to build (PostgreSQL's GIN, which
/// no parallel worker helps with) first: on two connections, both then finish about together.
pub fn pending(conn: &mut DbConnection) -> diesel::QueryResult<Vec<String>> {
    let names: Vec<Name> = Sql::new(
        "SELECT name FROM deferred_index \
         ORDER BY CASE WHEN definition LIKE '% USING gin %' THEN 0 ELSE 1 END, name",
    )
    .load(conn)?;
    Ok(names.into_iter().map(|n| n.name).collect())
}

/// Makes the index `name` again and forgets it, in one transaction; false when another
/// connection did so first (its row was gone).
pub fn restore_one(conn: &mut DbConnection, name: &str) -> diesel::QueryResult<bool> {
    write_transaction(conn, |conn| {
        let mut take = Sql::new("DELETE FROM deferred_index WHERE name = ");
        take.bind(Bind::Text(name.to_owned()))
            .push(" RETURNING definition");
        let Some(index) = take.load::<Definition>(conn)?.into_iter().next() else {
            return Ok(false);
        };
        conn.batch_execute(&index.definition)?;
        Ok(true)
    })
}

/// Makes every deferred index again, one after the other; returns how many. A no-op (one
/// query) when none is deferred, and on a database whose migrations have not made the table
/// yet.
pub fn restore(conn: &mut DbConnection) -> diesel::QueryResult<usize> {
    if !table_exists(conn)? {
        return Ok(0);
    }
    let mut restored = 0;
    for name in pending(conn)? {
        tracing::warn!("making index {name} again: an import dropped it and did not finish");
        restored += usize::from(restore_one(conn, &name)?);
    }
    Ok(restored)
}

fn table_exists(conn: &mut DbConnection) -> diesel::QueryResult<bool> {
    let query = match conn {
        DbConnection::Postgres(_) => {
            "SELECT CAST(to_regclass('deferred_index') AS TEXT) AS name \
             WHERE to_regclass('deferred_index') IS NOT NULL"
        }
        DbConnection::Sqlite(_) => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'deferred_index'"
        }
    };
    Ok(!Sql::new(query).load::<Name>(conn)?.is_empty())
}
