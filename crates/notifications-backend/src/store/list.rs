//! Reading a user's inbox: their own notifications plus every broadcast (with the user's own
//! read/saved state), filtered, ordered and paged.

use notifications_common::{
    Notification, NotificationId, NotificationListOptions, NotificationSeverity,
    NotificationStatus, ReadAllFilters, UserRef,
};

mod query;
mod read_all;
mod search;

use super::inbox_count::InboxTotals;
use super::rows::{BROADCAST_COLUMNS, CountRow, NotificationRow, TopicRow, USER_COLUMNS};
use super::{Store, StoreResult};
use crate::db::{DbConnection, Sql};
use query::{order_clause, page_query, topics_query, visible};

/// The filters shared by list, count and topics (no ordering or paging).
#[derive(Clone, Debug, Default)]
pub struct ListFilters {
    pub topic: Option<String>,
    pub search: Option<String>,
    pub read: Option<bool>,
    pub saved: Option<bool>,
    pub created_after: Option<time::OffsetDateTime>,
    pub minimum_severity: Option<NotificationSeverity>,
    /// Only these ids (internal: get-by-id and the update answer).
    pub ids: Option<Vec<NotificationId>>,
    /// The rows the search index proposes for `search`, when the user's side takes them from it
    /// (read per request by [`search::candidates`]).
    search_candidates: Option<std::sync::Arc<[i64]>>,
}

impl ListFilters {
    /// No filter but (perhaps) read/unread: the count comes from the maintained totals.
    fn only_read_state(&self) -> bool {
        let Self {
            topic,
            search,
            read: _,
            saved,
            created_after,
            minimum_severity: _,
            ids,
            search_candidates: _,
        } = self;
        topic.is_none()
            && search.is_none()
            && saved.is_none()
            && created_after.is_none()
            && self.severity_names().is_none()
            && ids.is_none()
    }
}

impl ListFilters {
    /// The severities `minimumSeverity` keeps, as SQL literals (from the enum: the statement text
    /// stays the same for every request); `None` when it keeps every severity.
    fn severity_names(&self) -> Option<Vec<String>> {
        let minimum = self.minimum_severity?;
        let kept: Vec<String> = NotificationSeverity::at_least_as_severe_as(minimum)
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        (kept.len() < NotificationSeverity::ALL.len()).then_some(kept)
    }

    /// Decides how a search reaches the user's rows, which may take a look at the index.
    fn with_search_path(mut self, conn: &mut DbConnection) -> diesel::QueryResult<Self> {
        if let Some(search) = &self.search {
            self.search_candidates = search::candidates(conn, search)?;
        }
        Ok(self)
    }
}

impl From<&ReadAllFilters> for ListFilters {
    fn from(f: &ReadAllFilters) -> Self {
        Self {
            topic: f.topic.clone(),
            search: f.search.clone(),
            saved: f.saved,
            created_after: f.created_after.map(|t| t.as_datetime()),
            minimum_severity: f.minimum_severity,
            ..Self::default()
        }
    }
}

impl From<&NotificationListOptions> for ListFilters {
    fn from(o: &NotificationListOptions) -> Self {
        Self {
            topic: o.topic.clone(),
            search: o.search.clone(),
            read: o.read,
            saved: o.saved,
            created_after: o.created_after.map(|t| t.as_datetime()),
            minimum_severity: o.minimum_severity,
            ids: None,
            search_candidates: None,
        }
    }
}

fn count(conn: &mut DbConnection, user: &str, f: &ListFilters) -> diesel::QueryResult<u64> {
    if f.only_read_state() {
        let totals = InboxTotals::read(conn, user)?;
        return Ok(match f.read {
            None => totals.total,
            Some(true) => totals.read,
            Some(false) => totals.total - totals.read,
        }
        .max(0) as u64);
    }
    // Each side counts its own rows (through its index); only the two counts meet in the union.
    let mut sql = Sql::new("SELECT CAST(SUM(v.count) AS BIGINT) AS count FROM ");
    sql.append(&visible("COUNT(*) AS count", "COUNT(*) AS count", user, f))
        .push(" v");
    let rows = sql.load::<CountRow>(conn)?;
    Ok(rows.first().map_or(0, |r| r.count.max(0) as u64))
}

impl Store {
    /// Runs `read` on a connection with `filters` ready to use: the search's path through the
    /// index decided and, on PostgreSQL, a search's statements planned for its text.
    async fn read_inbox<T: Send + 'static>(
        &self,
        filters: ListFilters,
        read: impl FnOnce(&mut DbConnection, &ListFilters) -> diesel::QueryResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.db
            .run(move |conn| {
                Ok(search::planned_for_values(
                    conn,
                    filters.search.is_some(),
                    |conn| {
                        let filters = filters.with_search_path(conn)?;
                        read(conn, &filters)
                    },
                )?)
            })
            .await
    }

    /// One page of the user's inbox and the number of rows matching the filters.
    pub async fn list(
        &self,
        user: &UserRef,
        options: &NotificationListOptions,
    ) -> StoreResult<(Vec<Notification>, u64)> {
        let user = user.as_str().to_owned();
        let options = options.clone();
        self.read_inbox(ListFilters::from(&options), move |conn, filters| {
            let total = count(conn, &user, filters)?;
            if options.limit == Some(0) {
                return Ok((Vec::new(), total));
            }
            let rows = page_query(&user, &options, filters).load::<NotificationRow>(conn)?;
            Ok((rows.into_iter().map(Notification::from).collect(), total))
        })
        .await
    }

    #[cfg(any(test, feature = "testing"))]
    /// The database's plan for the page that [`Store::list`] reads (`EXPLAIN` on PostgreSQL,
    /// `EXPLAIN QUERY PLAN` on SQLite), one line per node: for tests that pin the indexes each
    /// request shape uses, and for diagnosis.
    pub async fn explain_list(
        &self,
        user: &UserRef,
        options: &NotificationListOptions,
    ) -> StoreResult<Vec<String>> {
        let user = user.as_str().to_owned();
        let options = options.clone();
        self.read_inbox(ListFilters::from(&options), move |conn, filters| {
            super::plan::explain(conn, page_query(&user, &options, filters))
        })
        .await
    }

    #[cfg(any(test, feature = "testing"))]
    /// As [`Store::explain_list`], for [`Store::topics`].
    pub async fn explain_topics(
        &self,
        user: &UserRef,
        filters: ListFilters,
    ) -> StoreResult<Vec<String>> {
        let user = user.as_str().to_owned();
        self.read_inbox(filters, move |conn, filters| {
            super::plan::explain(conn, topics_query(&user, filters))
        })
        .await
    }

    /// The user's notifications (own and broadcast) among `ids`, newest first.
    pub async fn get_many(
        &self,
        user: &UserRef,
        ids: Vec<NotificationId>,
    ) -> StoreResult<Vec<Notification>> {
        let user = user.as_str().to_owned();
        self.db
            .run(move |conn| Ok(get_many(conn, &user, ids)?))
            .await
    }

    /// Read and unread counts over the user's whole inbox.
    pub async fn status(&self, user: &UserRef) -> StoreResult<NotificationStatus> {
        let user = user.as_str().to_owned();
        self.db
            .run(move |conn| {
                let totals = InboxTotals::read(conn, &user)?;
                Ok(NotificationStatus {
                    unread: (totals.total - totals.read).max(0) as u64,
                    read: totals.read.max(0) as u64,
                })
            })
            .await
    }

    /// The distinct topics of the user's inbox matching the filters, sorted.
    pub async fn topics(&self, user: &UserRef, filters: ListFilters) -> StoreResult<Vec<String>> {
        let user = user.as_str().to_owned();
        let rows = self
            .read_inbox(filters, move |conn, filters| {
                let query = topics_query(&user, filters);
                query.load::<TopicRow>(conn)
            })
            .await?;
        // Sorted here rather than by the database's collation, so both databases agree.
        let mut topics: Vec<String> = rows.into_iter().filter_map(|r| r.topic).collect();
        topics.sort();
        Ok(topics)
    }
}

pub(super) fn get_many(
    conn: &mut DbConnection,
    user: &str,
    ids: Vec<NotificationId>,
) -> diesel::QueryResult<Vec<Notification>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let filters = ListFilters {
        ids: Some(ids),
        ..Default::default()
    };
    let mut sql = Sql::new("SELECT * FROM ");
    sql.append(&visible(&USER_COLUMNS, &BROADCAST_COLUMNS, user, &filters))
        .push(" v ORDER BY ")
        .push(&order_clause(&[], "v."));
    Ok(sql
        .load::<NotificationRow>(conn)?
        .into_iter()
        .map(Notification::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_severity_low_is_no_filter() {
        let mut f = ListFilters {
            minimum_severity: Some(NotificationSeverity::Low),
            ..Default::default()
        };
        assert_eq!(f.severity_names(), None);
        assert!(f.only_read_state());
        f.minimum_severity = Some(NotificationSeverity::High);
        assert_eq!(
            f.severity_names(),
            Some(vec!["'critical'".to_owned(), "'high'".to_owned()])
        );
        assert!(!f.only_read_state());
    }
}
