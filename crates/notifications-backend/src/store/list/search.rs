//! SQLite's search index: the trigram FTS5 table `notification_search` (see its migration),
//! which finds the rows containing a text without reading every row. PostgreSQL needs nothing
//! here: its planner weighs its trigram indexes against walking the inbox for each statement.

use diesel::RunQueryDsl;

use crate::db::{Bind, DbConnection, Sql};
use crate::store::rows::CountRow;

/// A text found in at least this many rows (of every user) is common: walking the inbox in
/// its order meets a page of matches sooner than sorting every match the index finds. SQLite
/// cannot estimate that itself.
const COMMON: i64 = 2000;

/// Whether the user's side of a search takes its candidates from the index: on SQLite, for a
/// text of 3 characters or more (the index holds trigrams) that is not common.
pub(super) fn use_index(conn: &mut DbConnection, search: &str) -> diesel::QueryResult<bool> {
    let DbConnection::Sqlite(c) = conn else {
        return Ok(false);
    };
    if search.chars().count() < 3 {
        return Ok(false);
    }
    let mut sql = Sql::new(
        "SELECT COUNT(*) AS count FROM (SELECT 1 FROM notification_search \
         WHERE notification_search MATCH ",
    );
    sql.bind(Bind::Text(phrase(search)))
        .push(&format!(" LIMIT {COMMON}) AS matches"));
    let rows = sql.load::<CountRow>(c)?;
    Ok(rows.first().is_some_and(|r| r.count < COMMON))
}

/// ` AND n.rowid IN (<the index's candidates>)`: a superset of the rows whose title or
/// description contains `search` (the index folds case as `lower` does, or more), which the
/// search's LIKE then decides.
pub(super) fn push_candidates(sql: &mut Sql, search: &str) {
    sql.push(
        " AND n.rowid IN (SELECT rowid FROM notification_search \
         WHERE notification_search MATCH ",
    )
    .bind(Bind::Text(phrase(search)))
    .push(")");
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
