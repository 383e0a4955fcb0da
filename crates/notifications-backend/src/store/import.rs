//! `import`'s writes: rows of another notifications database, kept as they were (ids, times,
//! marks), inserted when absent, inside the caller's transaction. Plain inserts into
//! `notification`, so that the triggers keep `inbox_count` and SQLite's search index exactly as
//! for a send.

use std::collections::HashSet;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::sql_types::Uuid as UuidType;
use crate::db::{Bind, DbConnection, Sql};

/// What a notification and a broadcast both carry.
#[derive(Clone, Debug)]
pub struct ImportedContent {
    pub title: String,
    pub description: Option<String>,
    pub severity: String,
    pub link: Option<String>,
    pub origin: String,
    pub scope: Option<String>,
    pub topic: Option<String>,
    pub icon: Option<String>,
    pub created: OffsetDateTime,
    pub updated: Option<OffsetDateTime>,
}

/// A notification of one user, with the user's marks.
#[derive(Clone, Debug)]
pub struct ImportedNotification {
    pub id: Uuid,
    /// Canonical (`UserRef`).
    pub user: String,
    pub content: ImportedContent,
    pub read: Option<OffsetDateTime>,
    pub saved: Option<OffsetDateTime>,
}

/// A broadcast with every user's marks on it.
#[derive(Clone, Debug)]
pub struct ImportedBroadcast {
    pub id: Uuid,
    pub content: ImportedContent,
    pub marks: Vec<ImportedMark>,
}

#[derive(Clone, Debug)]
pub struct ImportedMark {
    pub user: String,
    pub read: Option<OffsetDateTime>,
    pub saved: Option<OffsetDateTime>,
}

#[derive(Clone, Debug)]
pub struct ImportedSetting {
    pub user: String,
    pub channel: String,
    pub origin: String,
    pub topic: Option<String>,
    pub enabled: bool,
}

/// What became of rows keyed by id.
#[derive(Debug, Default)]
pub struct IdOutcome {
    pub inserted: usize,
    /// Already there under the same id (an earlier import).
    pub present: usize,
    /// Not inserted although their id is new: another row holds their (user,) origin and scope,
    /// which this service keeps unique.
    pub conflicting: Vec<Uuid>,
}

/// Rows per multi-row INSERT: 14 binds each, within SQLite's 32,766 and PostgreSQL's 65,535.
const ROWS_PER_INSERT: usize = 1_000;

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = UuidType)]
    id: Uuid,
}

fn push_content(sql: &mut Sql, c: &ImportedContent) {
    sql.bind(Bind::Text(c.title.clone()))
        .push(", ")
        .bind(Bind::OptText(c.description.clone()))
        .push(", ")
        .bind(Bind::Text(c.severity.clone()))
        .push(", ")
        .bind(Bind::OptText(c.link.clone()))
        .push(", ")
        .bind(Bind::Text(c.origin.clone()))
        .push(", ")
        .bind(Bind::OptText(c.scope.clone()))
        .push(", ")
        .bind(Bind::OptText(c.topic.clone()))
        .push(", ")
        .bind(Bind::OptText(c.icon.clone()))
        .push(", ")
        .bind(Bind::Timestamp(c.created))
        .push(", ")
        .bind(Bind::OptTimestamp(c.updated));
}

const CONTENT_COLUMNS: &str =
    "title, description, severity, link, origin, scope, topic, icon, created, updated";

/// Whether the `notification` table holds no row.
pub fn no_notifications(conn: &mut DbConnection) -> diesel::QueryResult<bool> {
    let mut any = Sql::new("SELECT id FROM notification");
    any.limit(1);
    Ok(any.load::<IdRow>(conn)?.is_empty())
}

/// Inserts the notifications whose id is absent. On PostgreSQL a batch with no clash is copied
/// (`COPY`), several times faster than multi-row `INSERT`s, whose parsing and binding took most
/// of a load's time.
pub fn insert_notifications(
    conn: &mut DbConnection,
    rows: &[ImportedNotification],
) -> diesel::QueryResult<IdOutcome> {
    if let DbConnection::Postgres(pg) = conn
        && copy::all_at_once(pg, rows)?
    {
        return Ok(IdOutcome {
            inserted: rows.len(),
            ..IdOutcome::default()
        });
    }
    insert_by_id(
        conn,
        "notification",
        rows,
        |n| n.id,
        |sql, n| {
            sql.bind(Bind::Uuid(n.id))
                .push(", ")
                .bind(Bind::Text(n.user.clone()))
                .push(", ");
            push_content(sql, &n.content);
            sql.push(", ")
                .bind(Bind::OptTimestamp(n.read))
                .push(", ")
                .bind(Bind::OptTimestamp(n.saved));
        },
    )
}

/// Inserts the broadcasts whose id is absent, then the marks of every broadcast now present
/// (those of an earlier import too: marks made since are added); returns the marks inserted.
pub fn insert_broadcasts(
    conn: &mut DbConnection,
    rows: &[ImportedBroadcast],
) -> diesel::QueryResult<(IdOutcome, usize)> {
    let outcome = insert_by_id(
        conn,
        "broadcast",
        rows,
        |b| b.id,
        |sql, b| {
            sql.bind(Bind::Uuid(b.id)).push(", ");
            push_content(sql, &b.content);
        },
    )?;
    let refused: HashSet<Uuid> = outcome.conflicting.iter().copied().collect();
    let marks: Vec<(Uuid, &ImportedMark)> = rows
        .iter()
        .filter(|b| !refused.contains(&b.id))
        .flat_map(|b| b.marks.iter().map(move |m| (b.id, m)))
        .collect();
    let mut inserted = 0;
    for chunk in marks.chunks(ROWS_PER_INSERT) {
        let mut sql = Sql::new(
            "INSERT INTO broadcast_user_status (broadcast_id, user_ref, read, saved) VALUES ",
        );
        for (i, (id, m)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(Bind::Uuid(*id))
                .push(", ")
                .bind(Bind::Text(m.user.clone()))
                .push(", ")
                .bind(Bind::OptTimestamp(m.read))
                .push(", ")
                .bind(Bind::OptTimestamp(m.saved))
                .push(")");
        }
        sql.push(" ON CONFLICT DO NOTHING").uncacheable();
        inserted += sql.execute(conn)?;
    }
    Ok((outcome, inserted))
}

/// Inserts the switches a user does not have yet; returns how many.
pub fn insert_settings(
    conn: &mut DbConnection,
    rows: &[ImportedSetting],
) -> diesel::QueryResult<usize> {
    let mut inserted = 0;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = Sql::new(
            "INSERT INTO user_settings (user_ref, channel, origin, topic, enabled) VALUES ",
        );
        for (i, s) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(Bind::Text(s.user.clone()))
                .push(", ")
                .bind(Bind::Text(s.channel.clone()))
                .push(", ")
                .bind(Bind::Text(s.origin.clone()))
                .push(", ")
                .bind(Bind::OptText(s.topic.clone()))
                .push(", ")
                .bind(Bind::Bool(s.enabled))
                .push(")");
        }
        // The unique key is (user, channel, origin, topic): a switch set meanwhile stays.
        sql.push(" ON CONFLICT DO NOTHING").uncacheable();
        inserted += sql.execute(conn)?;
    }
    Ok(inserted)
}

/// `INSERT ... ON CONFLICT DO NOTHING RETURNING id` in chunks; the rows not inserted are told
/// apart by whether their id is there.
fn insert_by_id<T>(
    conn: &mut DbConnection,
    table: &str,
    rows: &[T],
    id_of: impl Fn(&T) -> Uuid,
    values: impl Fn(&mut Sql, &T),
) -> diesel::QueryResult<IdOutcome> {
    let user_column = if table == "notification" {
        "user_ref, "
    } else {
        ""
    };
    let marks = if table == "notification" {
        ", read, saved"
    } else {
        ""
    };
    let mut outcome = IdOutcome::default();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = Sql::new(&format!(
            "INSERT INTO {table} (id, {user_column}{CONTENT_COLUMNS}{marks}) VALUES "
        ));
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(");
            values(&mut sql, row);
            sql.push(")");
        }
        sql.push(" ON CONFLICT DO NOTHING RETURNING id")
            .uncacheable();
        let inserted: HashSet<Uuid> = sql.load::<IdRow>(conn)?.into_iter().map(|r| r.id).collect();
        sort_out(
            conn,
            table,
            chunk.iter().map(&id_of),
            &inserted,
            &mut outcome,
        )?;
    }
    Ok(outcome)
}

/// Counts the rows with ids `ids` of which `inserted` went in: those not inserted are either
/// there already (an earlier import) or refused for their scope.
fn sort_out(
    conn: &mut DbConnection,
    table: &str,
    ids: impl Iterator<Item = Uuid>,
    inserted: &HashSet<Uuid>,
    outcome: &mut IdOutcome,
) -> diesel::QueryResult<()> {
    outcome.inserted += inserted.len();
    let missed: Vec<Uuid> = ids.filter(|id| !inserted.contains(id)).collect();
    for chunk in missed.chunks(ROWS_PER_INSERT) {
        let mut present = Sql::new(&format!("SELECT id FROM {table} WHERE id IN "));
        present.bind_list(chunk.iter().map(|id| Bind::Uuid(*id)));
        let present: HashSet<Uuid> = present
            .load::<IdRow>(conn)?
            .into_iter()
            .map(|r| r.id)
            .collect();
        outcome.present += present.len();
        outcome
            .conflicting
            .extend(chunk.iter().filter(|id| !present.contains(id)));
    }
    Ok(())
}

/// PostgreSQL's bulk path for notifications.
mod copy {
    use diesel::result::{DatabaseErrorKind, Error};
    use diesel::{Connection, ExecuteCopyFromDsl, PgConnection};
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::ImportedNotification;

    diesel::table! {
        use diesel::sql_types::{Nullable, Text, Timestamptz, Uuid};

        /// The columns of `notification` an import fills.
        notification (id) {
            id -> Uuid,
            user_ref -> Text,
            title -> Text,
            description -> Nullable<Text>,
            severity -> Text,
            link -> Nullable<Text>,
            origin -> Text,
            scope -> Nullable<Text>,
            topic -> Nullable<Text>,
            icon -> Nullable<Text>,
            created -> Timestamptz,
            updated -> Nullable<Timestamptz>,
            read -> Nullable<Timestamptz>,
            saved -> Nullable<Timestamptz>,
        }
    }

    #[derive(diesel::Insertable)]
    #[diesel(table_name = notification, treat_none_as_default_value = false)]
    struct Row<'a> {
        id: Uuid,
        user_ref: &'a str,
        title: &'a str,
        description: Option<&'a str>,
        severity: &'a str,
        link: Option<&'a str>,
        origin: &'a str,
        scope: Option<&'a str>,
        topic: Option<&'a str>,
        icon: Option<&'a str>,
        created: OffsetDateTime,
        updated: Option<OffsetDateTime>,
        read: Option<OffsetDateTime>,
        saved: Option<OffsetDateTime>,
    }

    /// Copies all of `rows` into `notification` in one `COPY` (binary), in a savepoint: the
    /// rows' triggers run as for an `INSERT`. Returns false, having inserted none, when one of
    /// them clashes with a row there (its id, or its user, origin and scope: a rerun, or two
    /// source rows with one scope); the caller then inserts the batch row by row, skipping those.
    pub fn all_at_once(
        pg: &mut PgConnection,
        rows: &[ImportedNotification],
    ) -> diesel::QueryResult<bool> {
        let rows: Vec<Row<'_>> = rows
            .iter()
            .map(|n| {
                let c = &n.content;
                Row {
                    id: n.id,
                    user_ref: &n.user,
                    title: &c.title,
                    description: c.description.as_deref(),
                    severity: &c.severity,
                    link: c.link.as_deref(),
                    origin: &c.origin,
                    scope: c.scope.as_deref(),
                    topic: c.topic.as_deref(),
                    icon: c.icon.as_deref(),
                    created: c.created,
                    updated: c.updated,
                    read: n.read,
                    saved: n.saved,
                }
            })
            .collect();
        let copied = pg.transaction(|pg| {
            diesel::copy_from(notification::table)
                .from_insertable(&rows)
                .execute(pg)
        });
        match copied {
            Ok(_) => Ok(true),
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
