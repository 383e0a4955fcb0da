//! The delivery queue: rows written with the notification they deliver, claimed by workers
//! (several instances at once on PostgreSQL, `FOR UPDATE SKIP LOCKED`), finished with an outcome.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use notifications_common::{Notification, NotificationId};
use time::OffsetDateTime;

use super::{Store, StoreResult};
use crate::db::sql_types::{Jsonb, UtcTimestamp, Uuid};
use crate::db::{Bind, DbConnection, DbError, Sql};

/// Rows per multi-row INSERT (ten binds each): within both databases' limits.
const INSERT_CHUNK: usize = 1_000;

/// The NOTIFY channel told of new deliveries.
pub const DELIVERY_CHANNEL: &str = "notifications_delivery";

/// Where a delivery stands; stored as its lower-case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for its turn, or claimed by a worker now.
    Pending,
    Delivered,
    /// No more attempts (permanent error, attempts used up, or abandoned).
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<DB: Backend> FromSql<Text, DB> for DeliveryStatus
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let text = String::from_sql(bytes)?;
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown delivery status {text:?}").into())
    }
}

/// The columns a [`DeliveryRow`] is read from.
const COLUMNS: &str = "id, notification_id, user_ref, channel, notification, options, status, \
                       attempts, locked_until, last_error, created, digest_at";

/// A delivery as a worker gets it.
#[derive(Clone, Debug, QueryableByName)]
pub struct DeliveryRow {
    #[diesel(sql_type = Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Uuid, deserialize_as = uuid::Uuid)]
    pub notification_id: NotificationId,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_ref: Option<String>,
    #[diesel(sql_type = Text)]
    pub channel: String,
    #[diesel(sql_type = Jsonb)]
    pub notification: serde_json::Value,
    #[diesel(sql_type = Jsonb)]
    pub options: serde_json::Value,
    #[diesel(sql_type = Text)]
    pub status: DeliveryStatus,
    /// Including the current one, once claimed.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// The lease of the worker that claimed it; finishing requires it still to be this.
    #[diesel(sql_type = Nullable<UtcTimestamp>)]
    pub locked_until: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = UtcTimestamp)]
    pub created: OffsetDateTime,
    /// Kept for the user's digest that goes out then.
    #[diesel(sql_type = Nullable<UtcTimestamp>)]
    pub digest_at: Option<OffsetDateTime>,
}

/// Deliveries of one channel in one state (`pending`: waiting for its turn or a retry;
/// `in_flight`: claimed by a worker whose lease runs; `failed`), and the oldest one's creation.
#[derive(Clone, Debug, QueryableByName)]
pub struct QueueCount {
    #[diesel(sql_type = Text)]
    pub channel: String,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    #[diesel(sql_type = Nullable<UtcTimestamp>)]
    pub oldest: Option<OffsetDateTime>,
}

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again at the instant given.
    Retry {
        at: OffsetDateTime,
        error: String,
    },
    /// No more attempts.
    Failed {
        error: String,
    },
    /// Put back until the instant given, without counting the attempt.
    Later {
        at: OffsetDateTime,
        reason: String,
    },
    /// Kept for the user's digest that goes out at `due`, without counting the attempt; a
    /// delivery of the same notification already kept (a re-send) is updated instead.
    Digest {
        due: OffsetDateTime,
    },
}

/// Queues one delivery per (notification, channel), in the caller's transaction; each with the
/// options of the send it comes from.
pub(super) fn queue_deliveries<'a>(
    conn: &mut DbConnection,
    items: impl IntoIterator<Item = (&'a super::SendContext, Notification, &'a [String])>,
) -> diesel::QueryResult<()> {
    let now = OffsetDateTime::now_utc();
    let mut rows: Vec<(&'a super::SendContext, Notification, &'a String)> = Vec::new();
    for (send, notification, channels) in items {
        for channel in channels {
            rows.push((send, notification.clone(), channel));
        }
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = Sql::new(
            "INSERT INTO delivery (id, notification_id, user_ref, channel, notification, options, \
             status, attempts, run_at, created) VALUES ",
        );
        for (i, (send, notification, channel)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let json = serde_json::to_value(notification)
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            sql.push("(")
                .bind(Bind::Uuid(uuid::Uuid::now_v7()))
                .push(", ")
                .bind(Bind::Uuid(notification.id.0))
                .push(", ")
                .bind(Bind::OptText(notification.user.clone()))
                .push(", ")
                .bind(Bind::Text((*channel).clone()))
                .push(", ")
                .bind(Bind::OptJson(Some(json)))
                .push(", ")
                .bind(Bind::OptJson(Some(send.options.clone())))
                .push(", ")
                .bind(Bind::Text(DeliveryStatus::Pending.as_str().to_owned()))
                .push(", 0, ")
                .bind(Bind::Timestamp(now))
                .push(", ")
                .bind(Bind::Timestamp(now))
                .push(")");
        }
        sql.execute(conn)?;
    }
    if !rows.is_empty()
        && let DbConnection::Postgres(_) = conn
    {
        // Delivered at commit: workers of every instance wake up.
        Sql::new(&format!("NOTIFY {DELIVERY_CHANNEL}")).execute(conn)?;
    }
    Ok(())
}

/// For a delivery being kept for a digest: if one of the same notification and channel is kept
/// already (a scope re-send), gives that one this one's content; whether it did.
fn merge_into_kept(
    conn: &mut DbConnection,
    id: uuid::Uuid,
    locked_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> diesel::QueryResult<bool> {
    let mut sql = Sql::new(
        "UPDATE delivery SET notification = d.notification, options = d.options, updated = ",
    );
    sql.bind(Bind::Timestamp(now))
        .push(
            " FROM (SELECT notification_id, channel, notification, options FROM delivery \
             WHERE id = ",
        )
        .bind(Bind::Uuid(id))
        .push(" AND locked_until = ")
        .bind(Bind::OptTimestamp(locked_until))
        .push(
            ") AS d WHERE delivery.status = 'pending' AND delivery.digest_at IS NOT NULL \
             AND delivery.locked_until IS NULL AND delivery.notification_id = \
             d.notification_id AND delivery.channel = d.channel",
        );
    Ok(sql.execute(conn)? > 0)
}

impl Store {
    /// Takes up to `limit` due deliveries to `channels` for `lease`: no other worker gets them
    /// until then (after a crash, the lease runs out and another worker takes them). Counts the
    /// attempt. Instances with other processors leave each other's channels alone. Rows whose
    /// lease ran out after `max_attempts` attempts (their workers keep dying on them) are given
    /// up as failed instead.
    pub async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        channels: Vec<String>,
        limit: i64,
        lease: Duration,
        max_attempts: u32,
    ) -> StoreResult<Vec<DeliveryRow>> {
        self.db
            .write(move |conn| {
                let mut abandoned = Sql::new(
                    "UPDATE delivery SET status = 'failed', locked_until = NULL, last_error = ",
                );
                abandoned
                    .bind(Bind::Text(format!(
                        "abandoned: the worker stopped during each of {max_attempts} attempts"
                    )))
                    .push(", updated = ")
                    .bind(Bind::Timestamp(now))
                    .push(" WHERE status = 'pending' AND locked_until < ")
                    .bind(Bind::Timestamp(now))
                    .push(" AND attempts >= ")
                    .bind(Bind::BigInt(max_attempts.into()));
                abandoned.execute(conn)?;
                let mut sql = Sql::new("UPDATE delivery SET locked_until = ");
                sql.bind(Bind::Timestamp(now + lease))
                    .push(
                        ", attempts = attempts + 1 WHERE id IN (SELECT id FROM delivery \
                         WHERE status = 'pending' AND digest_at IS NULL AND run_at <= ",
                    )
                    .bind(Bind::Timestamp(now))
                    .push(" AND (locked_until IS NULL OR locked_until < ")
                    .bind(Bind::Timestamp(now))
                    .push(") AND channel IN ")
                    .bind_list(channels.into_iter().map(Bind::Text))
                    .push(" ORDER BY run_at")
                    .limit(limit);
                if let DbConnection::Postgres(_) = conn {
                    // Workers of other instances skip what this one takes, without waiting.
                    sql.push(" FOR UPDATE SKIP LOCKED");
                }
                sql.push(") RETURNING ").push(COLUMNS);
                // On SQLite the write transaction is the lock: one writer at a time.
                let mut rows: Vec<DeliveryRow> = sql.load::<DeliveryRow>(conn)?;
                rows.sort_by_key(|r| r.created);
                Ok::<_, DbError>(rows)
            })
            .await
    }

    /// Records how an attempt ended and releases the row, if the row is still under the lease
    /// `locked_until` of its claim (false: the lease ran out and another worker has it). A
    /// delivery kept for a digest whose notification has one kept already is merged into it.
    pub async fn finish_delivery(
        &self,
        id: uuid::Uuid,
        locked_until: Option<OffsetDateTime>,
        outcome: Outcome,
    ) -> StoreResult<bool> {
        self.db
            .write(move |conn| {
                let now = OffsetDateTime::now_utc();
                if matches!(outcome, Outcome::Digest { .. })
                    && merge_into_kept(conn, id, locked_until, now)?
                {
                    let mut merged = Sql::new("DELETE FROM delivery WHERE id = ");
                    merged
                        .bind(Bind::Uuid(id))
                        .push(" AND locked_until = ")
                        .bind(Bind::OptTimestamp(locked_until));
                    return Ok(merged.execute(conn)? == 1);
                }
                let mut sql = Sql::new("UPDATE delivery SET locked_until = NULL, updated = ");
                sql.bind(Bind::Timestamp(now)).push(", ");
                match outcome {
                    Outcome::Delivered => {
                        sql.push("last_error = NULL, status = ")
                            .bind(Bind::Text(DeliveryStatus::Delivered.as_str().into()));
                    }
                    Outcome::Retry { at, error } => {
                        sql.push("last_error = ")
                            .bind(Bind::Text(error))
                            .push(", run_at = ")
                            .bind(Bind::Timestamp(at));
                    }
                    Outcome::Later { at, reason } => {
                        sql.push("attempts = attempts - 1, last_error = ")
                            .bind(Bind::Text(reason))
                            .push(", run_at = ")
                            .bind(Bind::Timestamp(at));
                    }
                    Outcome::Failed { error } => {
                        sql.push("last_error = ")
                            .bind(Bind::Text(error))
                            .push(", status = ")
                            .bind(Bind::Text(DeliveryStatus::Failed.as_str().into()));
                    }
                    Outcome::Digest { due } => {
                        sql.push("attempts = attempts - 1, last_error = NULL, digest_at = ")
                            .bind(Bind::Timestamp(due))
                            .push(", run_at = ")
                            .bind(Bind::Timestamp(due));
                    }
                }
                sql.push(" WHERE id = ")
                    .bind(Bind::Uuid(id))
                    .push(" AND locked_until = ")
                    .bind(Bind::OptTimestamp(locked_until));
                Ok::<_, DbError>(sql.execute(conn)? == 1)
            })
            .await
    }

    /// Claims, for up to `users` users, every kept digest delivery whose window has closed by
    /// `now` (one user's all at once: one statement), for `lease`; grouped by user.
    pub async fn claim_digests(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        users: i64,
    ) -> StoreResult<Vec<Vec<DeliveryRow>>> {
        self.db
            .write(move |conn| {
                let due = |sql: &mut Sql| {
                    sql.push(" status = 'pending' AND digest_at IS NOT NULL AND run_at <= ")
                        .bind(Bind::Timestamp(now))
                        .push(" AND (locked_until IS NULL OR locked_until < ")
                        .bind(Bind::Timestamp(now))
                        .push(")");
                };
                #[derive(QueryableByName)]
                struct User {
                    #[diesel(sql_type = Text)]
                    user_ref: String,
                }
                let mut sql = Sql::new("SELECT DISTINCT user_ref FROM delivery WHERE");
                due(&mut sql);
                sql.push(" AND user_ref IS NOT NULL").limit(users);
                let mut windows = Vec::new();
                for user in sql.load::<User>(conn)? {
                    let mut claim = Sql::new("UPDATE delivery SET locked_until = ");
                    claim
                        .bind(Bind::Timestamp(now + lease))
                        .push(", attempts = attempts + 1 WHERE user_ref = ")
                        .bind(Bind::Text(user.user_ref))
                        .push(" AND");
                    due(&mut claim);
                    claim.push(" RETURNING ").push(COLUMNS);
                    let mut rows = claim.load::<DeliveryRow>(conn)?;
                    rows.sort_by_key(|r| (r.created, r.id));
                    if !rows.is_empty() {
                        windows.push(rows);
                    }
                }
                Ok::<_, DbError>(windows)
            })
            .await
    }

    /// Queues deliveries of `notifications` to `channel` outside a send's transaction, all or
    /// none: a processor's follow-up work (a Slack channel message, one mail per address of a
    /// broadcast), made and retried like any delivery.
    pub async fn queue_follow_ups(
        &self,
        notifications: Vec<Notification>,
        options: serde_json::Value,
        channel: String,
    ) -> StoreResult<()> {
        self.db
            .write(move |conn| {
                let send = super::SendContext {
                    origin: notifications
                        .first()
                        .map(|n| n.origin.clone())
                        .unwrap_or_default(),
                    created: notifications
                        .first()
                        .map_or_else(notifications_common::Timestamp::now, |n| n.created),
                    options,
                };
                let channels = [channel];
                queue_deliveries(
                    conn,
                    notifications.into_iter().map(|n| (&send, n, &channels[..])),
                )?;
                Ok::<_, DbError>(())
            })
            .await
    }

    /// Queues failed deliveries among `ids` again, with a fresh count of attempts; returns how
    /// many.
    pub async fn retry_deliveries(&self, ids: Vec<uuid::Uuid>) -> StoreResult<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = OffsetDateTime::now_utc();
        let mut sql = Sql::new("UPDATE delivery SET status = 'pending', attempts = 0, run_at = ");
        sql.bind(Bind::Timestamp(now))
            .push(", updated = ")
            .bind(Bind::Timestamp(now))
            .push(" WHERE status = 'failed' AND id IN ")
            .bind_list(ids.into_iter().map(Bind::Uuid));
        self.db
            .write(move |conn| Ok::<_, DbError>(sql.execute(conn)?))
            .await
    }

    /// The queue by channel and state, in one grouped statement over the unfinished and failed
    /// rows (delivered ones are not read: `delivery_status_idx` leads to the others).
    pub async fn delivery_queue(&self) -> StoreResult<Vec<QueueCount>> {
        let mut sql = Sql::new(
            "SELECT channel, CASE WHEN status = 'failed' THEN 'failed' \
             WHEN locked_until IS NOT NULL AND locked_until > ",
        );
        sql.bind(Bind::Timestamp(OffsetDateTime::now_utc())).push(
            " THEN 'in_flight' ELSE 'pending' END AS state, COUNT(*) AS count, \
             MIN(created) AS oldest FROM delivery WHERE status IN ('pending', 'failed') \
             GROUP BY channel, state",
        );
        self.db
            .run(move |conn| Ok::<_, DbError>(sql.load::<QueueCount>(conn)?))
            .await
    }

    /// Deliveries, newest first, optionally with one status or of one notification: the
    /// operator's view of failures, and the record of outcomes per notification and channel.
    pub async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        notification: Option<NotificationId>,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM delivery WHERE 1 = 1"));
        if let Some(status) = status {
            sql.push(" AND status = ")
                .bind(Bind::Text(status.as_str().to_owned()));
        }
        if let Some(id) = notification {
            sql.push(" AND notification_id = ").bind(Bind::Uuid(id.0));
        }
        sql.push(" ORDER BY created DESC, id DESC").limit(limit);
        self.db
            .run(move |conn| Ok::<_, DbError>(sql.load::<DeliveryRow>(conn)?))
            .await
    }
}
