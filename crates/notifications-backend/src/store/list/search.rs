//! SQLite's search index: the trigram FTS5 table `notification_search` (see its migration),
//! which finds the rows containing a text without reading every row. PostgreSQL needs nothing
//! here: its planner weighs its trigram indexes against walking the inbox for each statement.

use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::{Connection, QueryableByName};

use crate::db::{Bind, DbConnection, Sql};

/// A text found in at least this many rows (of every user) is common: walking the inbox in
/// its order meets a page of matches sooner than sorting every match the index finds. SQLite
/// cannot estimate that itself.
const COMMON: i64 = 2000;

/// The rows of `notification` (by rowid) that the index proposes for a search, when the user's
/// side should take them from it: on SQLite, for a text of 3 characters or more (the index holds
/// trigrams) that is not common. Read once per request, so that the count and the page do not
/// each search the index again.
pub(super) fn candidates(
    conn: &mut DbConnection,
    search: &str,
) -> diesel::QueryResult<Option<Arc<[i64]>>> {
    #[derive(QueryableByName)]
    struct Candidate {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rowid: i64,
    }
    let DbConnection::Sqlite(_) = conn else {
        return Ok(None);
    };
    if search.chars().count() < 3 {
        return Ok(None);
    }
    let mut sql =
        Sql::new("SELECT rowid AS rowid FROM notification_search WHERE notification_search MATCH ");
    sql.bind(Bind::Text(phrase(search)))
        .push(&format!(" LIMIT {COMMON}"))
        .uncacheable();
    let rows = sql.load::<Candidate>(conn)?;
    Ok((rows.len() < COMMON as usize).then(|| rows.into_iter().map(|r| r.rowid).collect()))
}

/// ` AND n.rowid IN (<candidates>)`: a superset of the rows whose title or description contains
/// the text (the index folds case as `lower` does, or more), which the search's LIKE then decides.
pub(super) fn push_candidates(sql: &mut Sql, candidates: &[i64]) {
    sql.push(" AND n.rowid IN ")
        .bind_list(candidates.iter().map(|&rowid| Bind::BigInt(rowid)));
}

/// Runs `f`, and when `searching` on PostgreSQL, has its statements planned for the values
/// bound: pooled connections otherwise reuse one plan per statement (`db::connection`), but a
/// search's best plan depends on how common its text is (the trigram indexes for a rare one, a
/// walk of the inbox in order for a common one).
pub(super) fn planned_for_values<T>(
    conn: &mut DbConnection,
    searching: bool,
    f: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<T>,
) -> diesel::QueryResult<T> {
    if !searching || !matches!(conn, DbConnection::Postgres(_)) {
        return f(conn);
    }
    conn.transaction(|conn| {
        conn.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")?;
        f(conn)
    })
}

/// The text as one FTS5 phrase: with the trigram tokenizer, its trigrams in a row, which is
/// the text as a substring, every character literal (`%`, `_` and quotes included).
fn phrase(search: &str) -> String {
    format!("\"{}\"", search.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_one_literal_phrase() {
        assert_eq!(phrase("number 42"), "\"number 42\"");
        assert_eq!(phrase("say \"hi\" OR"), "\"say \"\"hi\"\" OR\"");
    }
}
