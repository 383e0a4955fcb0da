//! The statements that read the inbox: the union of the user's rows and every broadcast,
//! filtered, and for a page read in index-ordered parts (see [`parts`]).

use notifications_common::{NotificationListOptions, OrderBy, OrderField, SortDirection};
use time::OffsetDateTime;

use super::ListFilters;
use super::search;
use crate::db::{Bind, Sql};
use crate::store::rows::{BROADCAST_COLUMNS, USER_COLUMNS};

/// Which table a branch of the union reads; decides the column owning read/saved state.
#[derive(Clone, Copy, PartialEq, Eq)]
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

    fn columns(self) -> &'static str {
        match self {
            Self::User => &USER_COLUMNS,
            Self::Broadcast => &BROADCAST_COLUMNS,
        }
    }

    /// The alias owning `field`'s column in this branch.
    fn owner(self, field: OrderField) -> &'static str {
        match field {
            OrderField::Read | OrderField::Saved => self.state_alias(),
            _ => self.alias(),
        }
    }
}

/// Where a branch's rows come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The user's rows, or every broadcast with the reader's status row (if any).
    All,
    /// Broadcasts only through the reader's status rows: for a part that keeps only read (or
    /// saved) broadcasts, which the status index finds without visiting every broadcast.
    StatusRows,
}

/// `SELECT <columns> ...` for one branch, with the filters applied inside it (so each side can
/// use its own indexes).
fn branch(branch: Branch, source: Source, columns: &str, user: &str, filters: &ListFilters) -> Sql {
    let mut sql = Sql::new("SELECT ");
    sql.push(columns);
    match (branch, source) {
        (Branch::User, _) => {
            sql.push(" FROM notification n");
            push_user(&mut sql, user, filters);
        }
        (Branch::Broadcast, Source::All) => {
            sql.push(
                " FROM broadcast b LEFT JOIN broadcast_user_status s \
                 ON s.broadcast_id = b.id AND s.user_ref = ",
            )
            .bind(Bind::Text(user.to_owned()))
            .push(" WHERE 1 = 1");
        }
        (Branch::Broadcast, Source::StatusRows) => {
            sql.push(
                " FROM broadcast_user_status s JOIN broadcast b ON b.id = s.broadcast_id \
                 WHERE s.user_ref = ",
            )
            .bind(Bind::Text(user.to_owned()));
        }
    }
    push_filters(&mut sql, branch, filters);
    sql
}

/// ` WHERE n.user_ref = <user>`.
fn push_user(sql: &mut Sql, user: &str, f: &ListFilters) {
    // The search index's candidates are few: look them up by rowid and sort them, rather than
    // walk the user's index (SQLite's `+` keeps it from choosing that index).
    let column = if f.search_candidates.is_some() {
        "+n.user_ref"
    } else {
        "n.user_ref"
    };
    sql.push(&format!(" WHERE {column} = "))
        .bind(Bind::Text(user.to_owned()));
}

fn push_filters(sql: &mut Sql, branch: Branch, f: &ListFilters) {
    let t = branch.alias();
    let state = branch.state_alias();
    if let Some(topic) = &f.topic {
        sql.push(&format!(" AND {t}.topic = "))
            .bind(Bind::Text(topic.clone()));
    }
    if let Some(search) = &f.search {
        if let (Some(candidates), Branch::User) = (&f.search_candidates, branch) {
            search::push_candidates(sql, candidates);
        }
        // Both sides fold through the database's `lower`, so they always fold alike. Statements
        // with a search are planned for their own pattern: whether the trigram index or an
        // order walk is cheaper depends on how common the text is.
        let pattern = format!("%{}%", escape_like(search));
        sql.uncacheable()
            .push(&format!(" AND (lower({t}.title) LIKE lower("))
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
    if let Some(names) = f.severity_names() {
        sql.push(&format!(" AND {t}.severity IN ({})", names.join(", ")));
    }
    if let Some(ids) = &f.ids {
        sql.push(&format!(" AND {t}.id IN "))
            .bind_list(ids.iter().map(|id| Bind::Uuid(id.0)));
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
pub(super) fn visible(
    user_columns: &str,
    broadcast_columns: &str,
    user: &str,
    f: &ListFilters,
) -> Sql {
    let mut sql = Sql::new("(");
    sql.append(&branch(Branch::User, Source::All, user_columns, user, f))
        .push(" UNION ALL ")
        .append(&branch(
            Branch::Broadcast,
            Source::All,
            broadcast_columns,
            user,
            f,
        ))
        .push(")");
    sql
}

/// Sets `read` to `now` on the user's own notifications matching the filters, returning their
/// ids. The filters are on the row updated, so that PostgreSQL checks them again on a row a
/// concurrent write changed (a subquery's would not be).
pub(super) fn mark_own_read(user: &str, f: &ListFilters, now: OffsetDateTime) -> Sql {
    let mut sql = Sql::new("UPDATE notification AS n SET read = ");
    sql.bind(Bind::Timestamp(now));
    push_user(&mut sql, user, f);
    push_filters(&mut sql, Branch::User, f);
    sql.push(" RETURNING id");
    sql
}

/// `SELECT b.id AS id ...`: the ids of the broadcasts matching the filters, the user's marks
/// on them as theirs.
pub(super) fn broadcast_ids(user: &str, f: &ListFilters) -> Sql {
    branch(Branch::Broadcast, Source::All, "b.id AS id", user, f)
}

/// Columns that may be NULL: they sort last in either direction.
fn nullable(field: OrderField) -> bool {
    !matches!(
        field,
        OrderField::Id
            | OrderField::Title
            | OrderField::Severity
            | OrderField::Origin
            | OrderField::Created
    )
}

fn column(field: OrderField) -> &'static str {
    match field {
        OrderField::User => "user_ref",
        other => other.as_str(),
    }
}

fn sql_direction(direction: SortDirection) -> &'static str {
    match direction {
        SortDirection::Asc => "ASC",
        SortDirection::Desc => "DESC",
    }
}

/// The ORDER BY terms, on columns of the union `v` (`prefix` "v.") or, inside a branch, on the
/// branch's own output columns (`prefix` ""). Ties break by `created` then `id` in the direction
/// of the first term, so that pages never overlap or skip rows and one index
/// `(user_ref, <field>, created, id)` serves both directions of a field.
pub(super) fn order_clause(order: &[OrderBy], prefix: &str) -> String {
    let (_, direction) = first_term(order);
    let mut terms: Vec<String> = order
        .iter()
        .map(|o| {
            let dir = sql_direction(o.direction);
            let column = column(o.field);
            // Both databases put NULLs last, whatever the direction.
            if nullable(o.field) {
                format!("{prefix}{column} {dir} NULLS LAST")
            } else {
                format!("{prefix}{column} {dir}")
            }
        })
        .collect();
    let dir = sql_direction(direction);
    for tie_break in [OrderField::Created, OrderField::Id] {
        if !order.iter().any(|o| o.field == tie_break) {
            terms.push(format!("{prefix}{} {dir}", column(tie_break)));
        }
    }
    terms.join(", ")
}

/// The field and direction that decide which index a page walks (default: newest first).
fn first_term(order: &[OrderBy]) -> (OrderField, SortDirection) {
    order
        .first()
        .map_or((OrderField::Created, SortDirection::Desc), |o| {
            (o.field, o.direction)
        })
}

/// One LIMITed part of a branch, walked in the order of one index.
struct Part {
    source: Source,
    /// Added to the branch's filters (fixed text, no binds).
    predicate: String,
    /// Inside the part, on the branch's output columns. Never NULLS LAST: an index gives NULLs
    /// first one way and last the other, so NULLs get a part of their own instead.
    order: String,
    /// The severity filter is this part's `predicate` (one part per severity).
    severity_in_predicate: bool,
}

impl Part {
    fn new(source: Source, predicate: String, order: String) -> Self {
        Self {
            source,
            predicate,
            order,
            severity_in_predicate: false,
        }
    }
}

/// How a branch is read for a page in `order`: parts that each walk an index in order and stop
/// after the page's window, whose rows the final sort merges. Only the first `window` rows of
/// each part can be among the first `window` of the union.
fn parts(branch: Branch, order: &[OrderBy], f: &ListFilters) -> Vec<Part> {
    let (field, direction) = first_term(order);
    let d = sql_direction(direction);
    let then = format!("created {d}, id {d}");
    let ordered_by = |field: OrderField| format!("{} {d}, {then}", column(field));
    let owner = branch.owner(field);
    let name = column(field);
    let indexed = matches!(
        field,
        OrderField::Created
            | OrderField::Updated
            | OrderField::Title
            | OrderField::Topic
            | OrderField::Origin
            | OrderField::Severity
            | OrderField::Read
            | OrderField::Saved
    );
    if order.len() > 1 || !indexed {
        // No index orders these: the branch is sorted, as a whole.
        return vec![Part::new(
            Source::All,
            String::new(),
            order_clause(order, ""),
        )];
    }
    match field {
        OrderField::Created => created_parts(branch, f, d),
        // The reader's read/saved broadcasts come from their status rows; the others walk the
        // broadcasts newest first (their state is NULL, so their order is the tie-break's).
        OrderField::Read | OrderField::Saved if branch == Branch::Broadcast => vec![
            Part::new(
                Source::StatusRows,
                format!(" AND s.{name} IS NOT NULL"),
                ordered_by(field),
            ),
            Part::new(Source::All, format!(" AND s.{name} IS NULL"), then),
        ],
        // Few rows are saved: a partial index has them, so sends write no entry into it; the
        // rest walk the created index.
        OrderField::Saved => vec![
            Part::new(
                Source::All,
                format!(" AND {owner}.{name} IS NOT NULL"),
                ordered_by(field),
            ),
            Part::new(Source::All, format!(" AND {owner}.{name} IS NULL"), then),
        ],
        _ if nullable(field) => vec![
            Part::new(
                Source::All,
                format!(" AND {owner}.{name} IS NOT NULL"),
                ordered_by(field),
            ),
            // PostgreSQL walks the index for the NULL part only when asked for its order.
            Part::new(
                Source::All,
                format!(" AND {owner}.{name} IS NULL"),
                ordered_by(field),
            ),
        ],
        _ => vec![Part::new(Source::All, String::new(), ordered_by(field))],
    }
}

/// The created order, walking the index that the filters pin: a topic's, one part per
/// severity, the unread rows of the read index, or the created index itself.
fn created_parts(branch: Branch, f: &ListFilters, d: &str) -> Vec<Part> {
    let then = format!("created {d}, id {d}");
    if f.topic.is_none()
        && let Some(names) = f.severity_names()
    {
        let t = branch.alias();
        return names
            .into_iter()
            .map(|name| Part {
                severity_in_predicate: true,
                ..Part::new(
                    Source::All,
                    format!(" AND {t}.severity = {name}"),
                    then.clone(),
                )
            })
            .collect();
    }
    match branch {
        // The NULL entries of (user_ref, read, created, id) are the unread rows, newest first.
        Branch::User if f.read == Some(false) && f.topic.is_none() => vec![Part::new(
            Source::All,
            String::new(),
            format!("read {d}, {then}"),
        )],
        Branch::Broadcast if f.read == Some(true) || f.saved == Some(true) => {
            vec![Part::new(Source::StatusRows, String::new(), then)]
        }
        _ => vec![Part::new(Source::All, String::new(), then)],
    }
}

/// The union of every part of both branches for a page of `window` rows.
fn visible_window(user: &str, f: &ListFilters, order: &[OrderBy], window: i64) -> Sql {
    let mut sql = Sql::new("(");
    let mut index = 0;
    for side in [Branch::User, Branch::Broadcast] {
        for part in parts(side, order, f) {
            if index > 0 {
                sql.push(" UNION ALL ");
            }
            let filters = if part.severity_in_predicate {
                ListFilters {
                    minimum_severity: None,
                    ..f.clone()
                }
            } else {
                f.clone()
            };
            sql.push("SELECT * FROM (")
                .append(&branch(side, part.source, side.columns(), user, &filters))
                .push(&part.predicate)
                .push(" ORDER BY ")
                .push(&part.order)
                .limit(window)
                .push(&format!(") p{index}"));
            index += 1;
        }
    }
    sql.push(")");
    sql
}

/// The statement that reads one page of the inbox (every row without a limit).
pub(super) fn page_query(
    user: &str,
    options: &NotificationListOptions,
    filters: &ListFilters,
) -> Sql {
    let order = &options.order;
    // SQLite needs a LIMIT before an OFFSET; PostgreSQL refuses -1, so "no limit" is the largest
    // value both accept.
    let page = (options.limit.is_some() || options.offset.is_some()).then(|| {
        let limit = options
            .limit
            .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = options
            .offset
            .map_or(0, |o| i64::try_from(o).unwrap_or(i64::MAX));
        (limit, offset)
    });
    let mut sql = Sql::new("SELECT * FROM ");
    match page.and_then(|(limit, offset)| limit.checked_add(offset)) {
        Some(window) if options.limit.is_some() => {
            sql.append(&visible_window(user, filters, order, window))
        }
        _ => sql.append(&visible(&USER_COLUMNS, &BROADCAST_COLUMNS, user, filters)),
    };
    sql.push(" v ORDER BY ").push(&order_clause(order, "v."));
    if order.len() > 1 {
        // Lists of orderings are the client's to make up: keep them out of the statement cache,
        // which would otherwise grow with every new list. A single ordering (a field and a
        // direction) makes a bounded set of statements, and planning the parts again on every
        // request would cost more than running them.
        sql.uncacheable();
    }
    if let Some((limit, offset)) = page {
        sql.limit(limit);
        sql.push(" OFFSET ").bind(Bind::BigInt(offset));
    }
    sql
}

/// The distinct topics of the user's rows matching `f`. Without a search, one index probe per
/// topic (a loose scan of `(user_ref, topic, ...)`: each probe finds the next topic that has a
/// matching row); a search decides the access path itself.
pub(super) fn topics_query(user: &str, f: &ListFilters) -> Sql {
    if f.search.is_some() {
        let mut sql = Sql::new("SELECT DISTINCT v.topic AS topic FROM ");
        sql.append(&visible("n.topic", "b.topic", user, f))
            .push(" v WHERE v.topic IS NOT NULL");
        return sql;
    }
    let next_topic = |after: &str| {
        let mut sql = Sql::new("SELECT MIN(n.topic) FROM notification n WHERE n.user_ref = ");
        sql.bind(Bind::Text(user.to_owned()))
            .push(&format!(" AND n.topic {after}"));
        push_filters(&mut sql, Branch::User, f);
        sql
    };
    let mut sql = Sql::new("WITH RECURSIVE t (topic) AS (SELECT (");
    sql.append(&next_topic("IS NOT NULL"))
        .push(") UNION ALL SELECT (")
        .append(&next_topic("> t.topic"))
        .push(") FROM t WHERE t.topic IS NOT NULL) SELECT t.topic AS topic FROM t WHERE t.topic IS NOT NULL UNION ")
        .append(&branch(
            Branch::Broadcast,
            Source::All,
            "b.topic AS topic",
            user,
            f,
        ))
        .push(" AND b.topic IS NOT NULL");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }

    #[test]
    fn ties_break_by_created_then_id_in_the_first_terms_direction() {
        assert_eq!(order_clause(&[], "v."), "v.created DESC, v.id DESC");
        assert_eq!(order_clause(&[], ""), "created DESC, id DESC");
        let by = |field, direction| OrderBy { field, direction };
        assert_eq!(
            order_clause(&[by(OrderField::User, SortDirection::Asc)], "v."),
            "v.user_ref ASC NULLS LAST, v.created ASC, v.id ASC"
        );
        assert_eq!(
            order_clause(&[by(OrderField::Title, SortDirection::Desc)], ""),
            "title DESC, created DESC, id DESC"
        );
        assert_eq!(
            order_clause(
                &[
                    by(OrderField::Topic, SortDirection::Asc),
                    by(OrderField::Created, SortDirection::Desc)
                ],
                ""
            ),
            "topic ASC NULLS LAST, created DESC, id ASC"
        );
    }
}
