//! Writing notifications: create (or update by scope) for many users at once, broadcasts, and
//! the read/saved marks.

use std::collections::HashMap;

use diesel::RunQueryDsl;
use notifications_common::{
    Notification, NotificationId, NotificationPayload, NotificationSignal, Timestamp,
};
use time::OffsetDateTime;

use super::deliveries::queue_deliveries;
use super::idempotency::{self, IdempotentSend, Written};
use super::list::get_many;
use super::rows::{BROADCAST_RETURNING, NotificationRow, USER_RETURNING};
use super::send_batch::{MAX_RECIPIENTS, SendBatcher, Target};
use super::signal_events::{NewSignal, record_signals};
use super::{Committed, Store, StoreResult};
use crate::db::{Bind, DbConnection, DbError, Sql, per_backend};

/// What the recipients of one send share.
#[derive(Clone, Debug)]
pub struct SendContext {
    pub origin: String,
    pub created: Timestamp,
    /// The send's options (recipients and payload) as JSON: what processors get with each
    /// delivery. Unused when nothing is delivered.
    pub options: serde_json::Value,
}

/// One recipient of a send: a user, or everyone (`user: None`, a broadcast).
#[derive(Clone, Debug)]
pub struct Recipient {
    pub user: Option<String>,
    /// Chosen before the processors' `pre_process`, so that they see the id that is stored.
    pub id: NotificationId,
    /// This recipient's content: the send's, as the processors left it.
    pub payload: NotificationPayload,
    /// False when the user's Web channel is off: nothing is stored, deliveries still are.
    pub web: bool,
    /// The channels (processor names) this notification is delivered to.
    pub channels: Vec<String>,
}

impl Recipient {
    /// `payload` for `user` (or everyone) in the inbox, delivered nowhere else.
    pub fn inbox_only(user: Option<String>, payload: NotificationPayload) -> Self {
        Self {
            user,
            id: NotificationId::generate(),
            payload,
            web: true,
            channels: Vec::new(),
        }
    }
}

/// A notification as a send left it.
#[derive(Clone, Debug)]
pub struct StoredNotification {
    pub notification: Notification,
    /// True when a re-send with the same origin and scope updated an existing notification.
    pub updated_existing: bool,
}

/// Rows per multi-row INSERT: well below both databases' bind-parameter limits.
pub(super) const INSERT_CHUNK: usize = 500;

const CONTENT_COLUMNS: &str =
    "title, description, severity, link, origin, scope, topic, icon, metadata, created";

/// The two tables a send writes to.
#[derive(Clone, Copy)]
pub(super) enum Table {
    Notification,
    Broadcast,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Notification => "notification",
            Self::Broadcast => "broadcast",
        }
    }

    /// The unique index a re-send with the same scope meets.
    fn scope_key(self) -> &'static str {
        match self {
            Self::Notification => "user_ref, origin, scope",
            Self::Broadcast => "origin, scope",
        }
    }

    fn returning(self) -> &'static str {
        match self {
            Self::Notification => &USER_RETURNING,
            Self::Broadcast => &BROADCAST_RETURNING,
        }
    }
}

/// What a re-send with the same scope changes: the content it carries (absent optional keys keep
/// their earlier values, as upstream), `updated`, and (on user rows) the read mark. `created`
/// and `saved` stay.
fn on_scope_conflict(table: Table) -> String {
    let name = table.name();
    let keep = |c: &str| format!("{c} = COALESCE(excluded.{c}, {name}.{c})");
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
    if let Table::Notification = table {
        sets.push("read = NULL".to_owned());
    }
    format!(
        " ON CONFLICT ({}) WHERE scope IS NOT NULL DO UPDATE SET {} RETURNING {}",
        table.scope_key(),
        sets.join(", "),
        table.returning()
    )
}

fn push_content(sql: &mut Sql, send: &SendContext, p: &NotificationPayload) {
    sql.bind(Bind::Text(p.title.clone()))
        .push(", ")
        .bind(Bind::OptText(p.description.clone()))
        .push(", ")
        .bind(Bind::Text(p.severity_or_default().as_str().to_owned()))
        .push(", ")
        .bind(Bind::OptText(p.link.clone()))
        .push(", ")
        .bind(Bind::Text(send.origin.clone()))
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
        .bind(Bind::Timestamp(send.created.as_datetime()));
}

/// The in-memory notification a fresh insert produced (what upstream answers for new rows), or
/// the notification a user whose Web channel is off gets delivered.
pub(super) fn fresh(send: &SendContext, r: &Recipient) -> Notification {
    let mut payload = r.payload.clone();
    payload.severity = Some(payload.severity_or_default());
    Notification {
        id: r.id,
        user: r.user.clone(),
        created: send.created,
        saved: None,
        read: None,
        updated: None,
        origin: send.origin.clone(),
        payload,
    }
}

/// `INSERT INTO <table>` of `rows`, each recipient with the content of its own send.
pub(super) fn insert_rows(table: Table, rows: &[(&SendContext, &Recipient)]) -> Sql {
    let user_column = matches!(table, Table::Notification);
    let mut sql = Sql::new(&format!("INSERT INTO {} (id, ", table.name()));
    if user_column {
        sql.push("user_ref, ");
    }
    sql.push(CONTENT_COLUMNS).push(") VALUES ");
    for (i, (send, r)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(").bind(Bind::Uuid(r.id.0)).push(", ");
        if user_column {
            sql.bind(Bind::Text(r.user.clone().unwrap_or_default()))
                .push(", ");
        }
        push_content(&mut sql, send, &r.payload);
        sql.push(")");
    }
    sql
}

fn load_returning(conn: &mut DbConnection, sql: Sql) -> diesel::QueryResult<Vec<NotificationRow>> {
    per_backend!(conn, |c| sql.load::<NotificationRow>(c))
}

impl Store {
    /// Stores a send for every user recipient whose Web channel is on, and queues every
    /// recipient's deliveries, in one transaction: all of it or nothing.
    ///
    /// Users who already have a notification with the same origin and scope get that one
    /// updated (and unread again) instead; its deliveries carry it as updated. The result lists
    /// what was stored, in the order of `recipients`, and a `new_notification` signal to each
    /// user with an inbox entry.
    pub async fn create_for_users(
        &self,
        send: SendContext,
        recipients: Vec<Recipient>,
    ) -> StoreResult<Committed<Vec<StoredNotification>>> {
        if let Some(batcher) = self.batcher_for(recipients.iter()) {
            return batcher.write(send, Target::Users(recipients)).await;
        }
        self.db
            .write(move |conn| write_for_users(conn, &send, &recipients))
            .await
    }

    /// [`Store::create_for_users`], under an idempotency key when there is one (see
    /// [`IdempotentSend`]).
    pub async fn create_for_users_keyed(
        &self,
        send: SendContext,
        recipients: Vec<Recipient>,
        key: Option<IdempotentSend>,
    ) -> StoreResult<Written<Committed<Vec<StoredNotification>>>> {
        if key.is_none() {
            return Ok(Written::Stored(
                self.create_for_users(send, recipients).await?,
                None,
            ));
        }
        self.db
            .write(move |conn| {
                let write = |conn: &mut DbConnection| write_for_users(conn, &send, &recipients);
                idempotency::once(conn, &send.origin, key, write, |c| &c.value)
            })
            .await
    }

    /// Stores a broadcast, or updates the earlier broadcast with the same origin and scope (which
    /// then reads as unread again for everyone), queues its deliveries, and records a
    /// `new_notification` signal to everyone.
    pub async fn create_broadcast(
        &self,
        send: SendContext,
        broadcast: Recipient,
    ) -> StoreResult<Committed<StoredNotification>> {
        if let Some(batcher) = self.batcher_for(std::iter::once(&broadcast)) {
            let mut committed = batcher
                .write(send, Target::Broadcast(Box::new(broadcast)))
                .await?;
            let value = committed
                .value
                .pop()
                .ok_or(DbError::Query(diesel::result::Error::NotFound))?;
            return Ok(Committed {
                value,
                signals: committed.signals,
            });
        }
        self.db
            .write(move |conn| write_broadcast(conn, &send, &broadcast))
            .await
    }

    /// [`Store::create_broadcast`], under an idempotency key when there is one (see
    /// [`IdempotentSend`]).
    pub async fn create_broadcast_keyed(
        &self,
        send: SendContext,
        broadcast: Recipient,
        key: Option<IdempotentSend>,
    ) -> StoreResult<Written<Committed<StoredNotification>>> {
        if key.is_none() {
            return Ok(Written::Stored(
                self.create_broadcast(send, broadcast).await?,
                None,
            ));
        }
        self.db
            .write(move |conn| {
                let write = |conn: &mut DbConnection| write_broadcast(conn, &send, &broadcast);
                idempotency::once(conn, &send.origin, key, write, |c| {
                    std::slice::from_ref(&c.value)
                })
            })
            .await
    }

    /// The batcher, when these recipients' send may go through it: on PostgreSQL, a small send
    /// without a scope (a send under an idempotency key never comes here).
    fn batcher_for<'a>(
        &self,
        recipients: impl ExactSizeIterator<Item = &'a Recipient>,
    ) -> Option<&SendBatcher> {
        let small = recipients.len() <= MAX_RECIPIENTS;
        self.batcher
            .as_ref()
            .filter(|_| small)
            .filter(|_| recipients.into_iter().all(|r| r.payload.scope.is_none()))
    }

    /// Sets or clears the read mark (`Some(now)` / `None`) of the user's notifications among
    /// `ids`, own and broadcast; then the same for the saved mark. Returns the user's
    /// notifications among `ids` afterwards, newest first. Unknown and foreign ids are ignored.
    /// `signal`, if any, is recorded for the user.
    pub async fn mark(
        &self,
        user: &str,
        ids: Vec<uuid::Uuid>,
        read: Option<Option<OffsetDateTime>>,
        saved: Option<Option<OffsetDateTime>>,
        signal: Option<NotificationSignal>,
    ) -> StoreResult<Committed<Vec<Notification>>> {
        let user = user.to_owned();
        self.db
            .write(move |conn| {
                if !ids.is_empty() {
                    if let Some(value) = read {
                        set_state(conn, &user, &ids, "read", value)?;
                    }
                    if let Some(value) = saved {
                        set_state(conn, &user, &ids, "saved", value)?;
                    }
                }
                let value = get_many(conn, &user, ids)?;
                let signals: Vec<NewSignal> = signal
                    .into_iter()
                    .map(|message| NewSignal {
                        recipient: Some(user.clone()),
                        message,
                    })
                    .collect();
                let signals = record_signals(conn, &signals)?;
                Ok::<_, DbError>(Committed { value, signals })
            })
            .await
    }
}

/// The statements of [`Store::create_for_users`], inside its transaction.
pub(super) fn write_for_users(
    conn: &mut DbConnection,
    send: &SendContext,
    recipients: &[Recipient],
) -> Result<Committed<Vec<StoredNotification>>, DbError> {
    // Rows are written in user order, so that two sends to overlapping users take their row
    // locks in the same order and cannot deadlock.
    let mut inbox: Vec<&Recipient> = recipients.iter().filter(|r| r.web).collect();
    inbox.sort_unstable_by(|a, b| a.user.cmp(&b.user));
    let mut stored = HashMap::with_capacity(inbox.len());
    for chunk in inbox.chunks(INSERT_CHUNK) {
        stored.extend(insert_user_chunk(conn, send, chunk)?);
    }
    let notifications: Vec<Option<StoredNotification>> = recipients
        .iter()
        .map(|r| r.user.as_ref().and_then(|u| stored.remove(u)))
        .collect();
    queue_deliveries(
        conn,
        recipients.iter().zip(&notifications).map(|(r, s)| {
            let n = s
                .as_ref()
                .map_or_else(|| fresh(send, r), |s| s.notification.clone());
            (send, n, r.channels.as_slice())
        }),
    )?;
    let stored: Vec<StoredNotification> = notifications.into_iter().flatten().collect();
    let signals: Vec<NewSignal> = stored
        .iter()
        .map(|s| new_notification_signal(s.notification.user.clone(), s))
        .collect();
    let signals = record_signals(conn, &signals)?;
    Ok(Committed {
        value: stored,
        signals,
    })
}

/// The statements of [`Store::create_broadcast`], inside its transaction.
pub(super) fn write_broadcast(
    conn: &mut DbConnection,
    send: &SendContext,
    broadcast: &Recipient,
) -> Result<Committed<StoredNotification>, DbError> {
    let id = broadcast.id.0;
    let mut sql = insert_rows(Table::Broadcast, &[(send, broadcast)]);
    sql.push(&on_scope_conflict(Table::Broadcast));
    let row = load_returning(conn, sql)?
        .into_iter()
        .next()
        .ok_or(diesel::result::Error::NotFound)?;
    let stored = if row.id == id {
        StoredNotification {
            notification: fresh(send, broadcast),
            updated_existing: false,
        }
    } else {
        reset_broadcast_read(conn, row.id)?;
        StoredNotification {
            notification: row.into(),
            updated_existing: true,
        }
    };
    queue_deliveries(
        conn,
        [(
            send,
            stored.notification.clone(),
            broadcast.channels.as_slice(),
        )],
    )?;
    let signals = record_signals(conn, &[new_notification_signal(None, &stored)])?;
    Ok(Committed {
        value: stored,
        signals,
    })
}

pub(super) fn new_notification_signal(
    recipient: Option<String>,
    stored: &StoredNotification,
) -> NewSignal {
    NewSignal {
        recipient,
        message: NotificationSignal::NewNotification {
            notification_id: stored.notification.id.to_string(),
        },
    }
}

/// Inserts (or, by scope, updates) one notification per user; gives each user's result.
fn insert_user_chunk(
    conn: &mut DbConnection,
    send: &SendContext,
    recipients: &[&Recipient],
) -> diesel::QueryResult<Vec<(String, StoredNotification)>> {
    let rows: Vec<(&SendContext, &Recipient)> = recipients.iter().map(|r| (send, *r)).collect();
    let mut sql = insert_rows(Table::Notification, &rows);
    let fresh_for = |r: &Recipient| StoredNotification {
        notification: fresh(send, r),
        updated_existing: false,
    };
    let user_of = |r: &Recipient| r.user.clone().unwrap_or_default();
    if recipients.iter().all(|r| r.payload.scope.is_none()) {
        // Nothing can conflict: no need to read the rows back.
        per_backend!(conn, |c| sql.execute(c))?;
        return Ok(recipients
            .iter()
            .map(|r| (user_of(r), fresh_for(r)))
            .collect());
    }
    sql.push(&on_scope_conflict(Table::Notification));
    let mut rows: HashMap<String, NotificationRow> = load_returning(conn, sql)?
        .into_iter()
        .map(|row| (row.user_ref.clone().unwrap_or_default(), row))
        .collect();
    Ok(recipients
        .iter()
        .filter_map(|r| {
            let row = rows.remove(&user_of(r))?;
            let stored = if row.id == r.id.0 {
                fresh_for(r)
            } else {
                StoredNotification {
                    notification: row.into(),
                    updated_existing: true,
                }
            };
            Some((user_of(r), stored))
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
