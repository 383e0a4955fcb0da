//! The delivery queue: rows written with the notification they deliver, claimed by workers
//! (several instances at once on PostgreSQL, `FOR UPDATE SKIP LOCKED`), finished with an outcome.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use notifications_common::{Notification, NotificationId, UserRef};
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
                       attempts, locked_until, last_error, created, digest_at, quiet_until";

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
    /// Held for the user's quiet hours until then.
    #[diesel(sql_type = Nullable<UtcTimestamp>)]
    pub quiet_until: Option<OffsetDateTime>,
}

/// Deliveries of one channel in one state (`pending`: waiting for its turn or a retry; `held`:
/// for a user's quiet hours or digest; `in_flight`: claimed by a worker whose lease runs;
/// `failed`), and the oldest one's creation.
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
    /// Held for the user's quiet hours until `until`, without counting the attempt.
    Quiet {
        until: OffsetDateTime,
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

/// Puts the user's held and kept deliveries (quiet hours, digests) back in the queue, due now,
/// so that the worker reads their preferences anew for each.
pub(super) fn release_held_query(user: &UserRef, now: OffsetDateTime) -> Sql {
    let mut sql = Sql::new("UPDATE delivery SET digest_at = NULL, quiet_until = NULL, run_at = ");
    sql.bind(Bind::Timestamp(now))
        .push(", updated = ")
        .bind(Bind::Timestamp(now))
        .push(" WHERE user_ref = ")
        .bind(Bind::Text(user.to_string()))
        .push(
            " AND status = 'pending' AND locked_until IS NULL \
             AND (digest_at IS NOT NULL OR quiet_until > ",
        )
        .bind(Bind::Timestamp(now))
        .push(")");
    sql
}

/// Gives up as failed the pending rows whose lease ran out after `max_attempts` attempts.
fn abandon_query(now: OffsetDateTime, max_attempts: u32) -> Sql {
    let mut sql =
        Sql::new("UPDATE delivery SET status = 'failed', locked_until = NULL, last_error = ");
    sql.bind(Bind::Text(format!(
        "abandoned: the worker stopped during each of {max_attempts} attempts"
    )))
    .push(", updated = ")
    .bind(Bind::Timestamp(now))
    .push(" WHERE status = 'pending' AND locked_until < ")
    .bind(Bind::Timestamp(now))
    .push(" AND attempts >= ")
    .bind(Bind::BigInt(max_attempts.into()));
    sql
}

/// Takes up to `limit` due deliveries to `channels` (digest ones excepted) for `lease`.
fn claim_query(
    conn: &DbConnection,
    now: OffsetDateTime,
    channels: Vec<String>,
    limit: i64,
    lease: Duration,
) -> Sql {
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
    sql
}

/// ` status = 'pending' AND ...`: a kept digest delivery whose window has closed by `now`, not
/// claimed by a worker whose lease runs, with attempts left (the abandoned ones are given up by
/// [`abandon_query`]).
fn push_digest_due(sql: &mut Sql, now: OffsetDateTime, max_attempts: u32) {
    sql.push(" status = 'pending' AND digest_at IS NOT NULL AND run_at <= ")
        .bind(Bind::Timestamp(now))
        .push(" AND (locked_until IS NULL OR locked_until < ")
        .bind(Bind::Timestamp(now))
        .push(") AND attempts < ")
        .bind(Bind::BigInt(max_attempts.into()));
}

/// The user whose digest has waited longest (`user_ref`), if any is due.
fn digest_user_query(now: OffsetDateTime, max_attempts: u32) -> Sql {
    let mut sql = Sql::new("SELECT user_ref FROM delivery WHERE");
    push_digest_due(&mut sql, now, max_attempts);
    sql.push(" AND user_ref IS NOT NULL ORDER BY run_at")
        .limit(1);
    sql
}

/// Takes every due digest delivery of `user` for `lease`, in one statement.
fn digest_claim_query(
    now: OffsetDateTime,
    lease: Duration,
    max_attempts: u32,
    user: String,
) -> Sql {
    let mut sql = Sql::new("UPDATE delivery SET locked_until = ");
    sql.bind(Bind::Timestamp(now + lease))
        .push(", attempts = attempts + 1 WHERE user_ref = ")
        .bind(Bind::Text(user))
        .push(" AND");
    push_digest_due(&mut sql, now, max_attempts);
    sql.push(" RETURNING ").push(COLUMNS);
    sql
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
                abandon_query(now, max_attempts).execute(conn)?;
                // On SQLite the write transaction is the lock: one writer at a time.
                let mut rows: Vec<DeliveryRow> =
                    claim_query(conn, now, channels, limit, lease).load::<DeliveryRow>(conn)?;
                rows.sort_by_key(|r| r.created);
                Ok::<_, DbError>(rows)
            })
            .await
    }

    /// Records how an attempt ended and releases the rows `ids` (claimed together), if they are
    /// still under the lease `locked_until` of their claim (false: the lease ran out and another
    /// worker has them). A delivery kept for a digest whose notification has one kept already is
    /// merged into it.
    pub async fn finish_deliveries(
        &self,
        ids: Vec<uuid::Uuid>,
        locked_until: Option<OffsetDateTime>,
        outcome: Outcome,
    ) -> StoreResult<bool> {
        self.db
            .write(move |conn| {
                let now = OffsetDateTime::now_utc();
                if let (Outcome::Digest { .. }, [id]) = (&outcome, ids.as_slice())
                    && merge_into_kept(conn, *id, locked_until, now)?
                {
                    let mut merged = Sql::new("DELETE FROM delivery WHERE id = ");
                    merged
                        .bind(Bind::Uuid(*id))
                        .push(" AND locked_until = ")
                        .bind(Bind::OptTimestamp(locked_until));
                    return Ok(merged.execute(conn)? == 1);
                }
                let count = ids.len();
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
                    Outcome::Quiet { until } => {
                        sql.push("attempts = attempts - 1, last_error = NULL, quiet_until = ")
                            .bind(Bind::Timestamp(until))
                            .push(", run_at = ")
                            .bind(Bind::Timestamp(until));
                    }
                }
                sql.push(" WHERE id IN ")
                    .bind_list(ids.into_iter().map(Bind::Uuid))
                    .push(" AND locked_until = ")
                    .bind(Bind::OptTimestamp(locked_until));
                Ok::<_, DbError>(sql.execute(conn)? == count)
            })
            .await
    }

    /// Claims every kept digest delivery of one user whose window has closed by `now` (the user
    /// who has waited longest), in one statement, for `lease`; none when no window is due.
    pub async fn claim_digest(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        max_attempts: u32,
    ) -> StoreResult<Vec<DeliveryRow>> {
        self.db
            .write(move |conn| {
                #[derive(QueryableByName)]
                struct User {
                    #[diesel(sql_type = Text)]
                    user_ref: String,
                }
                let Some(user) = digest_user_query(now, max_attempts)
                    .load::<User>(conn)?
                    .into_iter()
                    .next()
                else {
                    return Ok(Vec::new());
                };
                let mut rows = digest_claim_query(now, lease, max_attempts, user.user_ref)
                    .load::<DeliveryRow>(conn)?;
                rows.sort_by_key(|r| (r.created, r.id));
                Ok::<_, DbError>(rows)
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
        let now = OffsetDateTime::now_utc();
        let mut sql = Sql::new(
            "SELECT channel, CASE WHEN status = 'failed' THEN 'failed' \
             WHEN locked_until IS NOT NULL AND locked_until > ",
        );
        sql.bind(Bind::Timestamp(now))
            .push(" THEN 'in_flight' WHEN digest_at IS NOT NULL OR quiet_until > ")
            .bind(Bind::Timestamp(now))
            .push(
                " THEN 'held' ELSE 'pending' END AS state, COUNT(*) AS count, \
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

#[cfg(any(test, feature = "testing"))]
/// The plans of the statements that take work from the queue, one line per node (as
/// [`Store::explain_list`] gives them): for the tests that pin the indexes they use.
#[derive(Debug)]
pub struct ClaimPlans {
    /// [`Store::claim_deliveries`]' giving up of abandoned rows.
    pub abandon: Vec<String>,
    /// [`Store::claim_deliveries`]' claim.
    pub claim: Vec<String>,
    /// [`Store::claim_digest`]'s choice of a user.
    pub digest_user: Vec<String>,
    /// [`Store::claim_digest`]'s claim of the user's window.
    pub digest_claim: Vec<String>,
}

#[cfg(any(test, feature = "testing"))]
impl Store {
    /// The plans of the statements [`Store::claim_deliveries`] and [`Store::claim_digest`] run
    /// at `now` (for `channels`, and `user`'s window), without running them.
    pub async fn explain_delivery_claims(
        &self,
        now: OffsetDateTime,
        channels: Vec<String>,
        user: String,
    ) -> StoreResult<ClaimPlans> {
        use super::plan::explain;
        // Any values do for these binds: the plans are PostgreSQL's generic ones, and SQLite
        // plans by rules.
        let (limit, lease, max_attempts) = (10, Duration::from_secs(60), 5);
        self.db
            .run(move |conn| {
                let claim = claim_query(conn, now, channels, limit, lease);
                Ok::<_, DbError>(ClaimPlans {
                    abandon: explain(conn, abandon_query(now, max_attempts))?,
                    claim: explain(conn, claim)?,
                    digest_user: explain(conn, digest_user_query(now, max_attempts))?,
                    digest_claim: explain(
                        conn,
                        digest_claim_query(now, lease, max_attempts, user),
                    )?,
                })
            })
            .await
    }
}
