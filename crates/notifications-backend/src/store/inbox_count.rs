//! A user's inbox counted without visiting it: `inbox_count`, kept by triggers on `notification`
//! (see the migration `count_inbox_rows`). On PostgreSQL the triggers append to
//! `inbox_count_change`, folded into `inbox_count` by [`Store::fold_inbox_counts`].

use super::{Store, StoreResult};
use crate::db::{Bind, DbConnection, DbError, Sql};

/// How often the server folds PostgreSQL's counter changes: the changes a count sums stay few.
pub const FOLD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The whole inbox of a user: their own notifications, counted by the triggers, plus the
/// broadcasts (usually few) and the user's read marks on them.
#[derive(diesel::QueryableByName)]
pub(super) struct InboxTotals {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub total: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub read: i64,
}

impl InboxTotals {
    pub fn read(conn: &mut DbConnection, user: &str) -> diesel::QueryResult<Self> {
        let mut sql = Sql::new(
            "SELECT CAST(COALESCE(SUM(o.total), 0) AS BIGINT) \
             + (SELECT COUNT(*) FROM broadcast) AS total, \
             CAST(COALESCE(SUM(o.read), 0) AS BIGINT) \
             + (SELECT COUNT(*) FROM broadcast_user_status s WHERE s.user_ref = ",
        );
        sql.bind(Bind::Text(user.to_owned()))
            .push(" AND s.read IS NOT NULL) AS read FROM (SELECT total, read FROM inbox_count WHERE user_ref = ")
            .bind(Bind::Text(user.to_owned()));
        if let DbConnection::Postgres(_) = conn {
            sql.push(" UNION ALL SELECT total, read FROM inbox_count_change WHERE user_ref = ")
                .bind(Bind::Text(user.to_owned()));
        }
        sql.push(") o");
        let rows = sql.load::<InboxTotals>(conn)?;
        Ok(rows
            .into_iter()
            .next()
            .unwrap_or(Self { total: 0, read: 0 }))
    }
}

impl Store {
    /// PostgreSQL: moves the counter changes the triggers appended into `inbox_count`, in one
    /// statement (a count never sees a change twice or not at all); returns how many changes.
    /// Instances folding at once take turns on the rows. SQLite has no changes to fold.
    pub async fn fold_inbox_counts(&self) -> StoreResult<u64> {
        let folded = self
            .db
            .write(|conn| match conn {
                DbConnection::Postgres(_) => Ok(Sql::new(
                    "WITH moved AS (DELETE FROM inbox_count_change RETURNING user_ref, total, read) \
                     INSERT INTO inbox_count (user_ref, total, read) \
                     SELECT user_ref, SUM(total), SUM(read) FROM moved \
                     GROUP BY user_ref ORDER BY user_ref \
                     ON CONFLICT (user_ref) DO UPDATE SET \
                     total = inbox_count.total + excluded.total, \
                     read = inbox_count.read + excluded.read",
                )
                .execute(conn)? as u64),
                DbConnection::Sqlite(_) => Ok::<_, DbError>(0),
            })
            .await?;
        if folded > 0 {
            // The folded rows stay behind as dead tuples (and index entries) until a vacuum, and
            // every count of their users visits them: autovacuum wakes only once a minute, which
            // left counts several times slower after a burst of sends. The table is small, so
            // this is cheap. Without truncation: cutting the emptied pages off takes an
            // exclusive lock, and every count waited behind it (a stall each second).
            self.db
                .run(|conn| {
                    use diesel::connection::SimpleConnection;
                    conn.batch_execute("VACUUM (TRUNCATE false) inbox_count_change")
                        .map_err(DbError::from)
                })
                .await?;
        }
        Ok(folded)
    }
}
