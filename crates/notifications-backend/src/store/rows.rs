//! Rows as the queries of this module read them.

use std::sync::LazyLock;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use notifications_common::{Notification, NotificationId, NotificationPayload, Timestamp};
use time::OffsetDateTime;

use crate::db::sql_types::{Jsonb, UtcTimestamp, Uuid};

/// The columns a [`NotificationRow`] is read from (by name), apart from the per-user ones.
const SHARED_COLUMNS: [&str; 12] = [
    "id",
    "title",
    "description",
    "severity",
    "link",
    "origin",
    "scope",
    "topic",
    "icon",
    "metadata",
    "created",
    "updated",
];

fn select_list(alias: &str, user: &str, read: &str, saved: &str) -> String {
    let prefix = if alias.is_empty() {
        String::new()
    } else {
        format!("{alias}.")
    };
    let mut columns: Vec<String> = SHARED_COLUMNS
        .iter()
        .map(|c| format!("{prefix}{c}"))
        .collect();
    columns.extend([user, read, saved].map(str::to_owned));
    columns.join(", ")
}

/// User notifications as `n` in the inbox union.
pub static USER_COLUMNS: LazyLock<String> =
    LazyLock::new(|| select_list("n", "n.user_ref", "n.read", "n.saved"));
/// Broadcasts as `b`, with the reader's status row as `s`, in the inbox union.
pub static BROADCAST_COLUMNS: LazyLock<String> =
    LazyLock::new(|| select_list("b", "NULL AS user_ref", "s.read", "s.saved"));
/// What an upsert into `notification` gives back.
pub static USER_RETURNING: LazyLock<String> =
    LazyLock::new(|| select_list("", "user_ref", "read", "saved"));
/// What an upsert into `broadcast` gives back: per-user state is not part of the row.
pub static BROADCAST_RETURNING: LazyLock<String> =
    LazyLock::new(|| select_list("", "NULL AS user_ref", "NULL AS read", "NULL AS saved"));

/// One notification, user-addressed or broadcast, as stored.
#[derive(Debug, QueryableByName)]
pub struct NotificationRow {
    #[diesel(sql_type = Uuid, deserialize_as = uuid::Uuid)]
    pub id: NotificationId,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_ref: Option<String>,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Text)]
    pub severity: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub link: Option<String>,
    #[diesel(sql_type = Text)]
    pub origin: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub scope: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub topic: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub icon: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub metadata: Option<serde_json::Value>,
    #[diesel(sql_type = UtcTimestamp)]
    pub created: OffsetDateTime,
    #[diesel(sql_type = Nullable<UtcTimestamp>)]
    pub updated: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<UtcTimestamp>)]
    pub read: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<UtcTimestamp>)]
    pub saved: Option<OffsetDateTime>,
}

impl From<NotificationRow> for Notification {
    fn from(row: NotificationRow) -> Self {
        Notification {
            id: row.id,
            user: row.user_ref,
            created: row.created.into(),
            saved: row.saved.map(Timestamp::from),
            read: row.read.map(Timestamp::from),
            updated: row.updated.map(Timestamp::from),
            origin: row.origin,
            payload: NotificationPayload {
                title: row.title,
                description: row.description,
                link: row.link,
                // Only this service writes the column, always with a valid name.
                severity: Some(row.severity.parse().unwrap_or_default()),
                topic: row.topic,
                scope: row.scope,
                icon: row.icon,
                metadata: match row.metadata {
                    Some(serde_json::Value::Object(map)) => Some(map),
                    _ => None,
                },
            },
        }
    }
}

#[derive(Debug, QueryableByName)]
pub struct CountRow {
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

#[derive(Debug, QueryableByName)]
pub struct TopicRow {
    #[diesel(sql_type = Nullable<Text>)]
    pub topic: Option<String>,
}
