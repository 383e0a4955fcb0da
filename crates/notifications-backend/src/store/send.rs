//! What one send writes, inside whichever transaction runs it: its own (see `notifications`),
//! one under an idempotency key (`idempotency`), or a batch of sends (`send_batch`).

use std::collections::HashMap;

use notifications_common::{
    Notification, NotificationId, NotificationPayload, NotificationSignal, Timestamp,
};

use super::Committed;
use super::deliveries::queue_deliveries;
use super::rows::{BROADCAST_RETURNING, NotificationRow, USER_RETURNING};
use super::signal_events::{NewSignal, record_signals};
use crate::db::{Bind, DbConnection, DbError, Sql};

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
    #[cfg(feature = "testing")]
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

/// The statements of `Store::create_for_users`, inside its transaction.
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

/// The statements of `Store::create_broadcast`, inside its transaction.
pub(super) fn write_broadcast(
    conn: &mut DbConnection,
    send: &SendContext,
    broadcast: &Recipient,
) -> Result<Committed<StoredNotification>, DbError> {
    let mut sql = insert_rows(Table::Broadcast, &[(send, broadcast)]);
    sql.push(&on_scope_conflict(Table::Broadcast));
    let row = sql
        .load::<NotificationRow>(conn)?
        .into_iter()
        .next()
        .ok_or(diesel::result::Error::NotFound)?;
    let stored = if row.id == broadcast.id {
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
        sql.execute(conn)?;
        return Ok(recipients
            .iter()
            .map(|r| (user_of(r), fresh_for(r)))
            .collect());
    }
    sql.push(&on_scope_conflict(Table::Notification));
    let mut rows: HashMap<String, NotificationRow> = sql
        .load::<NotificationRow>(conn)?
        .into_iter()
        .map(|row| (row.user_ref.clone().unwrap_or_default(), row))
        .collect();
    Ok(recipients
        .iter()
        .filter_map(|r| {
            let row = rows.remove(&user_of(r))?;
            let stored = if row.id == r.id {
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

fn reset_broadcast_read(conn: &mut DbConnection, id: NotificationId) -> diesel::QueryResult<usize> {
    let mut sql = Sql::new("UPDATE broadcast_user_status SET read = NULL WHERE broadcast_id = ");
    sql.bind(Bind::Uuid(id.0));
    sql.execute(conn)
}
