//! Rows as the queries of this module read them.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use notifications_common::{Notification, NotificationId, NotificationPayload, Timestamp};
use time::OffsetDateTime;

use crate::db::sql_types::{Jsonb, UtcTimestamp, Uuid};

/// The columns every notification read selects, in this order, under these names. Broadcast
/// branches select `NULL` for `user_ref` and the reader's status row for `read`/`saved`.
pub const USER_COLUMNS: &str = "n.id, n.user_ref, n.title, n.description, n.severity, n.link, \
     n.origin, n.scope, n.topic, n.icon, n.metadata, n.created, n.updated, n.read, n.saved";
pub const BROADCAST_COLUMNS: &str = "b.id, NULL AS user_ref, b.title, b.description, b.severity, \
     b.link, b.origin, b.scope, b.topic, b.icon, b.metadata, b.created, b.updated, s.read, s.saved";

/// One notification, user-addressed or broadcast, as stored.
#[derive(Debug, QueryableByName)]
pub struct NotificationRow {
    #[diesel(sql_type = Uuid)]
    pub id: uuid::Uuid,
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
            id: NotificationId(row.id),
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
