//! Reading a user's inbox: their own notifications plus every broadcast (with the user's own
//! read/saved state), filtered, ordered and paged.

use notifications_common::{
    Notification, NotificationListOptions, NotificationSeverity, NotificationStatus, OrderBy,
    OrderField, SortDirection,
};

use super::inbox_count::InboxTotals;
use super::rows::{BROADCAST_COLUMNS, CountRow, NotificationRow, TopicRow, USER_COLUMNS};
use super::{Store, StoreResult};
use crate::db::{Bind, DbConnection, Sql, per_backend};
use diesel::RunQueryDsl;

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
    pub ids: Option<Vec<uuid::Uuid>>,
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
            minimum_severity,
            ids,
        } = self;
        topic.is_none()
            && search.is_none()
            && saved.is_none()
            && created_after.is_none()
            && minimum_severity.is_none()
            && ids.is_none()
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
        }
    }
}

/// Which table a branch of the union reads; decides the column owning read/saved state.
#[derive(Clone, Copy)]
enum Branch {
    User,
    Broadcast,
}

impl Branch {
    fn alias(self) -> &'static str {
        match self {
            Self::User => "n",
            Self::Broadcast => "b",
        }
    }

    /// Read/saved are on the row for user notifications, on the status row for broadcasts.
    fn state_alias(self) -> &'static str {
        match self {
            Self::User => "n",
            Self::Broadcast => "s",
        }
    }
}

/// `SELECT <columns> ...` for one branch, with the filters applied inside it (so each side can
/// use its own indexes).
fn branch(branch: Branch, columns: &str, user: &str, filters: &ListFilters) -> Sql {
    let mut sql = Sql::new("SELECT ");
    sql.push(columns);
    match branch {
        Branch::User => {
            sql.push(" FROM notification n WHERE n.user_ref = ")
                .bind(Bind::Text(user.to_owned()));
        }
        Branch::Broadcast => {
            sql.push(
                " FROM broadcast b LEFT JOIN broadcast_user_status s \
                 ON s.broadcast_id = b.id AND s.user_ref = ",
            )
            .bind(Bind::Text(user.to_owned()))
            .push(" WHERE 1 = 1");
        }
    }
    push_filters(&mut sql, branch, filters);
    sql
}

fn push_filters(sql: &mut Sql, branch: Branch, f: &ListFilters) {
    let t = branch.alias();
    let state = branch.state_alias();
    if let Some(topic) = &f.topic {
        sql.push(&format!(" AND {t}.topic = "))
            .bind(Bind::Text(topic.clone()));
    }
    if let Some(search) = &f.search {
        // Both sides fold through the database's `lower`, so they always fold alike.
        let pattern = format!("%{}%", escape_like(search));
        sql.push(&format!(" AND (lower({t}.title) LIKE lower("))
            .bind(Bind::Text(pattern.clone()))
            .push(&format!(
                ") ESCAPE '\\' OR lower({t}.description) LIKE lower("
            ))
            .bind(Bind::Text(pattern))
            .push(") ESCAPE '\\')");
    }
    if let Some(read) = f.read {
        sql.push(&format!(
            " AND {state}.read IS {}NULL",
            if read { "NOT " } else { "" }
        ));
    }
    if let Some(saved) = f.saved {
        sql.push(&format!(
            " AND {state}.saved IS {}NULL",
            if saved { "NOT " } else { "" }
        ));
    }
    if let Some(after) = f.created_after {
        sql.push(&format!(" AND {t}.created >= "))
            .bind(Bind::Timestamp(after));
    }
    if let Some(minimum) = f.minimum_severity {
        // Literal names from the enum: the statement text stays the same for every request.
        let names: Vec<String> = NotificationSeverity::at_least_as_severe_as(minimum)
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        sql.push(&format!(" AND {t}.severity IN ({})", names.join(", ")));
    }
    if let Some(ids) = &f.ids {
        sql.push(&format!(" AND {t}.id IN "))
            .bind_list(ids.iter().map(|id| Bind::Uuid(*id)));
    }
}

/// `%`, `_` and the escape character itself match literally in a search.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The visible set: `(<user branch> UNION ALL <broadcast branch>)`.
fn visible(user_columns: &str, broadcast_columns: &str, user: &str, f: &ListFilters) -> Sql {
    let mut sql = Sql::new("(");
    sql.append(&branch(Branch::User, user_columns, user, f))
        .push(" UNION ALL ")
        .append(&branch(Branch::Broadcast, broadcast_columns, user, f))
        .push(")");
    sql
}

/// The ORDER BY terms, on columns of the union `v` (`prefix` "v.") or, inside a branch, on the
/// branch's own output columns (`prefix` "").
fn order_clause(order: &[OrderBy], prefix: &str) -> String {
    let mut terms: Vec<String> = order
        .iter()
        .map(|o| {
            let column = match o.field {
                OrderField::User => "user_ref",
                other => other.as_str(),
            };
            let dir = match o.direction {
                SortDirection::Asc => "ASC",
                SortDirection::Desc => "DESC",
            };
            // Both databases put NULLs last, whatever the direction.
            format!("{prefix}{column} {dir} NULLS LAST")
        })
        .collect();
    if order.is_empty() {
        terms.push(format!("{prefix}created DESC"));
    }
    // Ties break by id so that pages never overlap or skip rows.
    terms.push(format!("{prefix}id DESC"));
    terms.join(", ")
}

/// [`visible`] for a page: only the first `window` rows of each branch in `order` can be among
/// the first `window` of the union, so each branch stops there (through its index, for the
/// default newest-first order) instead of handing every row to the final sort.
fn visible_window(user: &str, f: &ListFilters, order: &[OrderBy], window: i64) -> Sql {
    let branch_order = order_clause(order, "");
    let mut sql = Sql::new("(SELECT * FROM (");
    sql.append(&branch(Branch::User, &USER_COLUMNS, user, f))
        .push(" ORDER BY ")
        .push(&branch_order)
        .push(" LIMIT ")
        .bind(Bind::BigInt(window))
        .push(") own UNION ALL SELECT * FROM (")
        .append(&branch(Branch::Broadcast, &BROADCAST_COLUMNS, user, f))
        .push(" ORDER BY ")
        .push(&branch_order)
        .push(" LIMIT ")
        .bind(Bind::BigInt(window))
        .push(") everyone)");
    sql
}

fn load_rows(conn: &mut DbConnection, sql: Sql) -> diesel::QueryResult<Vec<NotificationRow>> {
    per_backend!(conn, |c| sql.load::<NotificationRow>(c))
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
    let rows = per_backend!(conn, |c| sql.load::<CountRow>(c))?;
    Ok(rows.first().map_or(0, |r| r.count.max(0) as u64))
}

impl Store {
    /// One page of the user's inbox and the number of rows matching the filters.
    pub async fn list(
        &self,
        user: &str,
        options: &NotificationListOptions,
    ) -> StoreResult<(Vec<Notification>, u64)> {
        let filters = ListFilters::from(options);
        let user = user.to_owned();
        let order_by = options.order.clone();
        let custom_order = !order_by.is_empty();
        let (limit, offset) = (options.limit, options.offset);
        self.db
            .run(move |conn| {
                let total = count(conn, &user, &filters)?;
                if limit == Some(0) {
                    return Ok((Vec::new(), total));
                }
                // SQLite needs a LIMIT before an OFFSET; PostgreSQL refuses -1, so "no limit" is
                // the largest value both accept.
                let page = (limit.is_some() || offset.is_some()).then(|| {
                    let limit = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
                    let offset = offset.map_or(0, |o| i64::try_from(o).unwrap_or(i64::MAX));
                    (limit, offset)
                });
                let mut sql = Sql::new("SELECT * FROM ");
                match page.and_then(|(limit, offset)| limit.checked_add(offset)) {
                    Some(window) if limit.is_some() => {
                        sql.append(&visible_window(&user, &filters, &order_by, window))
                    }
                    _ => sql.append(&visible(&USER_COLUMNS, &BROADCAST_COLUMNS, &user, &filters)),
                };
                sql.push(" v ORDER BY ")
                    .push(&order_clause(&order_by, "v."));
                if custom_order {
                    // Orderings are chosen by clients: keep them out of the statement cache.
                    sql.uncacheable();
                }
                if let Some((limit, offset)) = page {
                    sql.push(" LIMIT ").bind(Bind::BigInt(limit));
                    sql.push(" OFFSET ").bind(Bind::BigInt(offset));
                }
                let rows = load_rows(conn, sql)?;
                Ok((rows.into_iter().map(Notification::from).collect(), total))
            })
            .await
    }

    /// The user's notifications (own and broadcast) among `ids`, newest first.
    pub async fn get_many(
        &self,
        user: &str,
        ids: Vec<uuid::Uuid>,
    ) -> StoreResult<Vec<Notification>> {
        let user = user.to_owned();
        self.db
            .run(move |conn| Ok(get_many(conn, &user, ids)?))
            .await
    }

    /// Read and unread counts over the user's whole inbox.
    pub async fn status(&self, user: &str) -> StoreResult<NotificationStatus> {
        let user = user.to_owned();
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
    pub async fn topics(&self, user: &str, filters: ListFilters) -> StoreResult<Vec<String>> {
        let user = user.to_owned();
        self.db
            .run(move |conn| {
                let mut sql = Sql::new("SELECT DISTINCT v.topic AS topic FROM ");
                sql.append(&visible("n.topic", "b.topic", &user, &filters))
                    .push(" v WHERE v.topic IS NOT NULL");
                let rows = per_backend!(conn, |c| sql.load::<TopicRow>(c))?;
                // Sorted here rather than by the database's collation, so both databases agree.
                let mut topics: Vec<String> = rows.into_iter().filter_map(|r| r.topic).collect();
                topics.sort();
                Ok(topics)
            })
            .await
    }
}

pub(super) fn get_many(
    conn: &mut DbConnection,
    user: &str,
    ids: Vec<uuid::Uuid>,
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
    Ok(load_rows(conn, sql)?
        .into_iter()
        .map(Notification::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }

    #[test]
    fn default_order_is_newest_first_with_id_tiebreak() {
        assert_eq!(order_clause(&[], "v."), "v.created DESC, v.id DESC");
        assert_eq!(order_clause(&[], ""), "created DESC, id DESC");
        let o = [OrderBy {
            field: OrderField::User,
            direction: SortDirection::Asc,
        }];
        assert_eq!(
            order_clause(&o, "v."),
            "v.user_ref ASC NULLS LAST, v.id DESC"
        );
    }
}
