//! Mark all read (beyond upstream): every unread notification of a user that matches the list's
//! filters, own and broadcast, in one transaction of two statements whatever their number.

use notifications_common::{NotificationSignal, ReadAllFilters, UserRef};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ListFilters;
use super::query::{broadcast_ids, mark_own_read};
use super::search::planned_for_values;
use crate::db::sql_types::Uuid as UuidType;
use crate::db::{DbConnection, DbError};
use crate::store::notifications::upsert_broadcast_mark;
use crate::store::signal_events::{NewSignal, record_signals};
use crate::store::{Committed, Store, StoreResult};

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = UuidType)]
    id: Uuid,
}

impl Store {
    /// Marks read at `now` the user's unread notifications that match `filters`, own and
    /// broadcast; records one `notification_read` signal naming them for the user, as a mark
    /// through `update` does. Returns how many were marked: a notification marked read
    /// meanwhile by another request is neither counted nor named again.
    pub async fn mark_all_read(
        &self,
        user: &UserRef,
        filters: &ReadAllFilters,
        now: OffsetDateTime,
    ) -> StoreResult<Committed<u64>> {
        let user = user.as_str().to_owned();
        let filters = ListFilters {
            read: Some(false),
            ..ListFilters::from(filters)
        };
        self.db
            .write(move |conn| {
                let searching = filters.search.is_some();
                let ids = planned_for_values(conn, searching, |conn| {
                    let filters = filters.with_search_path(conn)?;
                    let mut ids = load_ids(conn, mark_own_read(&user, &filters, now))?;
                    let mut broadcasts = upsert_broadcast_mark(
                        &user,
                        "read",
                        Some(now),
                        &broadcast_ids(&user, &filters),
                    );
                    // Not a mark set since the statement's snapshot (a concurrent request's).
                    broadcasts.push(
                        " WHERE broadcast_user_status.read IS NULL RETURNING broadcast_id AS id",
                    );
                    ids.extend(load_ids(conn, broadcasts)?);
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

#[cfg(any(test, feature = "testing"))]
impl Store {
    /// The database's plan for the statement [`Store::mark_all_read`] marks the user's own rows
    /// with (as [`Store::explain_list`] gives one), without running it.
    pub async fn explain_mark_all_read(
        &self,
        user: &UserRef,
        filters: &ReadAllFilters,
    ) -> StoreResult<Vec<String>> {
        let user = user.as_str().to_owned();
        let filters = ListFilters {
            read: Some(false),
            ..ListFilters::from(filters)
        };
        self.read_inbox(filters, move |conn, filters| {
            crate::store::plan::explain(
                conn,
                mark_own_read(&user, filters, OffsetDateTime::now_utc()),
            )
        })
        .await
    }
}

fn load_ids(conn: &mut DbConnection, sql: crate::db::Sql) -> diesel::QueryResult<Vec<Uuid>> {
    Ok(sql.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect())
}
