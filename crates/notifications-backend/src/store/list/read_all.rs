//! Mark all read (beyond upstream): every unread notification of a user that matches the list's
//! filters, own and broadcast, in one transaction of two statements whatever their number.

use notifications_common::{NotificationSignal, UserRef};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ListFilters;
use super::query::{broadcast_ids, own_ids};
use super::search::planned_for_values;
use crate::db::sql_types::Uuid as UuidType;
use crate::db::{Bind, DbConnection, DbError, Sql};
use crate::store::signal_events::{NewSignal, record_signals};
use crate::store::{Committed, Store, StoreResult};

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = UuidType)]
    id: Uuid,
}

impl Store {
    /// Marks read at `now` the user's unread notifications that match `filters` (their `read`
    /// is not used), own and broadcast; records one `notification_read` signal naming them for
    /// the user, as a mark through `update` does. Returns how many were marked.
    pub async fn mark_all_read(
        &self,
        user: &UserRef,
        filters: ListFilters,
        now: OffsetDateTime,
    ) -> StoreResult<Committed<u64>> {
        let user = user.as_str().to_owned();
        let filters = ListFilters {
            read: Some(false),
            ..filters
        };
        self.db
            .write(move |conn| {
                let searching = filters.search.is_some();
                let ids = planned_for_values(conn, searching, |conn| {
                    let filters = filters.with_search_path(conn)?;
                    let mut ids = mark_own(conn, &user, &filters, now)?;
                    ids.extend(mark_broadcasts(conn, &user, &filters, now)?);
                    Ok(ids)
                })?;
                let signals = if ids.is_empty() {
                    Vec::new()
                } else {
                    let message = NotificationSignal::NotificationRead {
                        notification_ids: ids.iter().map(Uuid::to_string).collect(),
                    };
                    record_signals(
                        conn,
                        &[NewSignal {
                            recipient: Some(user.clone()),
                            message,
                        }],
                    )?
                };
                Ok::<_, DbError>(Committed {
                    value: ids.len() as u64,
                    signals,
                })
            })
            .await
    }
}

/// The user's own unread rows matching the filters, marked.
fn mark_own(
    conn: &mut DbConnection,
    user: &str,
    filters: &ListFilters,
    now: OffsetDateTime,
) -> diesel::QueryResult<Vec<Uuid>> {
    let mut sql = Sql::new("UPDATE notification SET read = ");
    sql.bind(Bind::Timestamp(now))
        .push(" WHERE id IN (")
        .append(&own_ids(user, filters))
        .push(") RETURNING id");
    Ok(sql.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect())
}

/// The broadcasts matching the filters that the user has not read, marked on the user's status
/// rows (made where there is none yet).
fn mark_broadcasts(
    conn: &mut DbConnection,
    user: &str,
    filters: &ListFilters,
    now: OffsetDateTime,
) -> diesel::QueryResult<Vec<Uuid>> {
    let mut sql =
        Sql::new("INSERT INTO broadcast_user_status (broadcast_id, user_ref, read) SELECT m.id, ");
    sql.bind(Bind::Text(user.to_owned()))
        .push(", ")
        .bind(Bind::Timestamp(now))
        .push(" FROM (")
        .append(&broadcast_ids(user, filters))
        // `WHERE true`: SQLite would read the ON of ON CONFLICT as a join's.
        .push(
            ") m WHERE true ON CONFLICT (broadcast_id, user_ref) DO UPDATE SET read = excluded.read \
             RETURNING broadcast_id AS id",
        );
    Ok(sql.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect())
}
