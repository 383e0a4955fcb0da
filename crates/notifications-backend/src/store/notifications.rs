//! Writing notifications: create (or update by scope) for many users at once, broadcasts, and
//! the read/saved marks.

use diesel::RunQueryDsl;
use notifications_common::{Notification, NotificationId, NotificationPayload, Timestamp};
use time::OffsetDateTime;

use super::list::get_many;
use super::rows::NotificationRow;
use super::{Store, StoreResult};
use crate::db::{Bind, DbConnection, DbError, Sql, per_backend, write_transaction};

/// What one send stores: the same content for every recipient.
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub origin: String,
    pub payload: NotificationPayload,
    pub created: Timestamp,
}

/// A notification as a send left it.
#[derive(Clone, Debug)]
pub struct StoredNotification {
    pub notification: Notification,
    /// True when a re-send with the same origin and scope updated an existing notification.
    pub updated_existing: bool,
}

/// Rows per multi-row INSERT: well below both databases' bind-parameter limits.
const INSERT_CHUNK: usize = 500;

const CONTENT_COLUMNS: &str =
    "title, description, severity, link, origin, scope, topic, icon, metadata, created";

/// What a re-send with the same scope changes: the content it carries (absent optional keys keep
/// their earlier values, as upstream), `updated`, and the read mark. `created` and `saved` stay.
fn on_scope_conflict(table: &str, target: &str, reset_read: bool) -> String {
    let keep = |c: &str| format!("{c} = COALESCE(excluded.{c}, {table}.{c})");
    let mut sets = vec![
        "title = excluded.title".to_owned(),
        "severity = excluded.severity".to_owned(),
        keep("description"),
        keep("link"),
        keep("topic"),
        keep("icon"),
        keep("metadata"),
        "updated = excluded.created".to_owned(),
    ];
    if reset_read {
        sets.push("read = NULL".to_owned());
    }
    format!(
        " ON CONFLICT ({target}) WHERE scope IS NOT NULL DO UPDATE SET {} RETURNING {}",
        sets.join(", "),
        returning_columns(table)
    )
}

fn returning_columns(table: &str) -> String {
    let user = if table == "notification" {
        "user_ref"
    } else {
        "NULL AS user_ref"
    };
    let state = if table == "notification" {
        "read, saved"
    } else {
        // Per-user state is not part of a broadcast row; the sender sees none.
        "NULL AS read, NULL AS saved"
    };
    format!(
        "id, {user}, title, description, severity, link, origin, scope, topic, icon, metadata, \
         created, updated, {state}"
    )
}

fn push_content(sql: &mut Sql, n: &NewNotification) {
    let p = &n.payload;
    sql.bind(Bind::Text(p.title.clone()))
        .push(", ")
        .bind(Bind::OptText(p.description.clone()))
        .push(", ")
        .bind(Bind::Text(p.severity_or_default().as_str().to_owned()))
        .push(", ")
        .bind(Bind::OptText(p.link.clone()))
        .push(", ")
        .bind(Bind::Text(n.origin.clone()))
        .push(", ")
        .bind(Bind::OptText(p.scope.clone()))
        .push(", ")
        .bind(Bind::OptText(p.topic.clone()))
        .push(", ")
        .bind(Bind::OptText(p.icon.clone()))
        .push(", ")
        .bind(Bind::OptJson(
            p.metadata.clone().map(serde_json::Value::Object),
        ))
        .push(", ")
        .bind(Bind::Timestamp(n.created.as_datetime()));
}

/// The in-memory notification a fresh insert produced (what upstream answers for new rows).
fn fresh(id: uuid::Uuid, user: Option<String>, n: &NewNotification) -> Notification {
    let mut payload = n.payload.clone();
    payload.severity = Some(payload.severity_or_default());
    Notification {
        id: NotificationId(id),
        user,
        created: n.created,
        saved: None,
        read: None,
        updated: None,
        origin: n.origin.clone(),
        payload,
    }
}

fn load_returning(conn: &mut DbConnection, sql: Sql) -> diesel::QueryResult<Vec<NotificationRow>> {
    per_backend!(conn, |c| sql.load::<NotificationRow>(c))
}

impl Store {
    /// Stores `n` for every user in one transaction: all of them or none.
    ///
    /// Users who already have a notification with the same origin and scope get that one
    /// updated (and unread again) instead. The result follows the order of `users`.
    pub async fn create_for_users(
        &self,
        n: NewNotification,
        users: Vec<String>,
    ) -> StoreResult<Vec<StoredNotification>> {
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let mut out = Vec::with_capacity(users.len());
                    for chunk in users.chunks(INSERT_CHUNK) {
                        out.extend(insert_user_chunk(conn, &n, chunk)?);
                    }
                    Ok::<_, DbError>(out)
                })
            })
            .await
    }

    /// Stores a broadcast, or updates the earlier broadcast with the same origin and scope (which
    /// then reads as unread again for everyone).
    pub async fn create_broadcast(&self, n: NewNotification) -> StoreResult<StoredNotification> {
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    let id = NotificationId::generate().0;
                    let mut sql = Sql::new("INSERT INTO broadcast (id, ");
                    sql.push(CONTENT_COLUMNS)
                        .push(") VALUES (")
                        .bind(Bind::Uuid(id))
                        .push(", ");
                    push_content(&mut sql, &n);
                    sql.push(")")
                        .push(&on_scope_conflict("broadcast", "origin, scope", false));
                    let row = load_returning(conn, sql)?
                        .into_iter()
                        .next()
                        .ok_or(diesel::result::Error::NotFound)?;
                    if row.id == id {
                        return Ok::<_, DbError>(StoredNotification {
                            notification: fresh(id, None, &n),
                            updated_existing: false,
                        });
                    }
                    reset_broadcast_read(conn, row.id)?;
                    Ok(StoredNotification {
                        notification: row.into(),
                        updated_existing: true,
                    })
                })
            })
            .await
    }

    /// Sets or clears the read mark (`Some(now)` / `None`) of the user's notifications among
    /// `ids`, own and broadcast; then the same for the saved mark. Returns the user's
    /// notifications among `ids` afterwards, newest first. Unknown and foreign ids are ignored.
    pub async fn mark(
        &self,
        user: &str,
        ids: Vec<uuid::Uuid>,
        read: Option<Option<OffsetDateTime>>,
        saved: Option<Option<OffsetDateTime>>,
    ) -> StoreResult<Vec<Notification>> {
        let user = user.to_owned();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    if !ids.is_empty() {
                        if let Some(value) = read {
                            set_state(conn, &user, &ids, "read", value)?;
                        }
                        if let Some(value) = saved {
                            set_state(conn, &user, &ids, "saved", value)?;
                        }
                    }
                    Ok::<_, DbError>(get_many(conn, &user, ids)?)
                })
            })
            .await
    }
}

fn insert_user_chunk(
    conn: &mut DbConnection,
    n: &NewNotification,
    users: &[String],
) -> diesel::QueryResult<Vec<StoredNotification>> {
    let ids: Vec<uuid::Uuid> = users.iter().map(|_| NotificationId::generate().0).collect();
    let mut sql = Sql::new("INSERT INTO notification (id, user_ref, ");
    sql.push(CONTENT_COLUMNS).push(") VALUES ");
    for (i, (user, id)) in users.iter().zip(&ids).enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(")
            .bind(Bind::Uuid(*id))
            .push(", ")
            .bind(Bind::Text(user.clone()))
            .push(", ");
        push_content(&mut sql, n);
        sql.push(")");
    }
    if n.payload.scope.is_none() {
        // Nothing can conflict: no need to read the rows back.
        per_backend!(conn, |c| sql.execute(c))?;
        return Ok(users
            .iter()
            .zip(ids)
            .map(|(user, id)| StoredNotification {
                notification: fresh(id, Some(user.clone()), n),
                updated_existing: false,
            })
            .collect());
    }
    sql.push(&on_scope_conflict(
        "notification",
        "user_ref, origin, scope",
        true,
    ));
    let mut by_user: std::collections::HashMap<String, NotificationRow> =
        load_returning(conn, sql)?
            .into_iter()
            .map(|row| (row.user_ref.clone().unwrap_or_default(), row))
            .collect();
    Ok(users
        .iter()
        .zip(ids)
        .filter_map(|(user, id)| {
            let row = by_user.remove(user)?;
            Some(if row.id == id {
                StoredNotification {
                    notification: fresh(id, Some(user.clone()), n),
                    updated_existing: false,
                }
            } else {
                StoredNotification {
                    notification: row.into(),
                    updated_existing: true,
                }
            })
        })
        .collect())
}

fn reset_broadcast_read(conn: &mut DbConnection, id: uuid::Uuid) -> diesel::QueryResult<usize> {
    let mut sql = Sql::new("UPDATE broadcast_user_status SET read = NULL WHERE broadcast_id = ");
    sql.bind(Bind::Uuid(id));
    per_backend!(conn, |c| sql.execute(c))
}

/// Sets one state column (`read` or `saved`) on the user's own rows and on their status rows of
/// the broadcasts among `ids`, leaving the other column alone (upstream's PostgreSQL path clears
/// it, see the contract's quirk 1).
fn set_state(
    conn: &mut DbConnection,
    user: &str,
    ids: &[uuid::Uuid],
    column: &'static str,
    value: Option<OffsetDateTime>,
) -> diesel::QueryResult<()> {
    let id_list = || ids.iter().map(|id| Bind::Uuid(*id));

    let mut own = Sql::new(&format!("UPDATE notification SET {column} = "));
    own.bind(Bind::OptTimestamp(value))
        .push(" WHERE user_ref = ")
        .bind(Bind::Text(user.to_owned()))
        .push(" AND id IN ")
        .bind_list(id_list());
    per_backend!(conn, |c| own.execute(c))?;

    let mut broadcast = Sql::new(&format!(
        "INSERT INTO broadcast_user_status (broadcast_id, user_ref, {column}) SELECT b.id, "
    ));
    broadcast
        .bind(Bind::Text(user.to_owned()))
        .push(", ")
        .bind(Bind::OptTimestamp(value))
        .push(" FROM broadcast b WHERE b.id IN ")
        .bind_list(id_list())
        .push(&format!(
            " ON CONFLICT (broadcast_id, user_ref) DO UPDATE SET {column} = excluded.{column}"
        ));
    per_backend!(conn, |c| broadcast.execute(c))?;
    Ok(())
}
