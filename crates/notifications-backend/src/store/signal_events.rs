//! Signals as published: written in the transaction that causes them, read back by id (by other
//! instances, told over NOTIFY) and after an id (by resuming event-stream clients), and pruned
//! once older than the replay window.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use notifications_common::{NOTIFICATIONS_CHANNEL, NotificationSignal};
use time::OffsetDateTime;

use super::{Store, StoreResult};
use crate::db::{Bind, DbConnection, Sql};
use crate::published_signal::PublishedSignal;

/// Rows per multi-row INSERT (four binds each).
const INSERT_CHUNK: usize = 1000;

/// A signal to publish once its transaction commits.
#[derive(Clone, Debug)]
pub struct NewSignal {
    /// The entity ref whose connections get it; `None`: everyone's.
    pub recipient: Option<String>,
    pub message: NotificationSignal,
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    recipient: Option<String>,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = Text)]
    message: String,
}

impl From<EventRow> for PublishedSignal {
    fn from(r: EventRow) -> Self {
        PublishedSignal::new(r.id, r.recipient, r.channel, r.message)
    }
}

const COLUMNS: &str = "id, recipient, channel, message";

/// Records `signals` in the caller's transaction; gives them with their ids, in id order.
pub(super) fn record_signals(
    conn: &mut DbConnection,
    signals: &[NewSignal],
) -> diesel::QueryResult<Vec<PublishedSignal>> {
    let now = OffsetDateTime::now_utc();
    let mut events = Vec::with_capacity(signals.len());
    for chunk in signals.chunks(INSERT_CHUNK) {
        let mut sql =
            Sql::new("INSERT INTO signal_event (recipient, channel, message, created) VALUES ");
        for (i, s) in chunk.iter().enumerate() {
            let message = serde_json::to_string(&s.message)
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(Bind::OptText(s.recipient.clone()))
                .push(", ")
                .bind(Bind::Text(NOTIFICATIONS_CHANNEL.to_owned()))
                .push(", ")
                .bind(Bind::Text(message))
                .push(", ")
                .bind(Bind::Timestamp(now))
                .push(")");
        }
        sql.push(" RETURNING ").push(COLUMNS);
        let rows = sql.load::<EventRow>(conn)?;
        events.extend(rows.into_iter().map(PublishedSignal::from));
    }
    events.sort_unstable_by_key(|e| e.id);
    Ok(events)
}

impl Store {
    /// The events with ids in any of the inclusive `ranges`, in id order.
    pub async fn signal_events_in(
        &self,
        ranges: Vec<(i64, i64)>,
    ) -> StoreResult<Vec<PublishedSignal>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        self.db
            .run(move |conn| {
                let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM signal_event WHERE "));
                sql.uncacheable();
                for (i, (first, last)) in ranges.iter().enumerate() {
                    if i > 0 {
                        sql.push(" OR ");
                    }
                    sql.push("id BETWEEN ")
                        .bind(Bind::BigInt(*first))
                        .push(" AND ")
                        .bind(Bind::BigInt(*last));
                }
                sql.push(" ORDER BY id");
                let rows = sql.load::<EventRow>(conn)?;
                Ok(rows.into_iter().map(PublishedSignal::from).collect())
            })
            .await
    }

    /// Up to `limit` events after `after` (and, with `since`, also those created since then), in
    /// id order: all of them (`refs: None`), or those for any of `refs` and everyone's.
    pub async fn signal_events_after(
        &self,
        after: i64,
        since: Option<OffsetDateTime>,
        refs: Option<Vec<String>>,
        limit: i64,
    ) -> StoreResult<Vec<PublishedSignal>> {
        self.db
            .run(move |conn| {
                let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM signal_event WHERE (id > "));
                sql.bind(Bind::BigInt(after));
                if let Some(since) = since {
                    sql.push(" OR created >= ").bind(Bind::Timestamp(since));
                }
                sql.push(")");
                if let Some(refs) = refs {
                    sql.push(" AND (recipient IS NULL OR recipient IN ")
                        .bind_list(refs.into_iter().map(Bind::Text))
                        .push(")");
                }
                sql.push(" ORDER BY id").limit(limit);
                let rows = sql.load::<EventRow>(conn)?;
                Ok(rows.into_iter().map(PublishedSignal::from).collect())
            })
            .await
    }

    /// The ids of the oldest and the newest event kept. A client that last saw an event older
    /// than the oldest may have missed some.
    pub async fn signal_event_bounds(&self) -> StoreResult<(Option<i64>, Option<i64>)> {
        self.db
            .run(|conn| {
                #[derive(QueryableByName)]
                struct Bounds {
                    #[diesel(sql_type = Nullable<BigInt>)]
                    oldest: Option<i64>,
                    #[diesel(sql_type = Nullable<BigInt>)]
                    newest: Option<i64>,
                }
                let sql = Sql::new("SELECT MIN(id) AS oldest, MAX(id) AS newest FROM signal_event");
                let rows = sql.load::<Bounds>(conn)?;
                Ok(rows
                    .into_iter()
                    .next()
                    .map_or((None, None), |b| (b.oldest, b.newest)))
            })
            .await
    }

    /// Sends a NOTIFY (PostgreSQL only; SQLite has no other instance to tell).
    pub async fn notify(&self, channel: &'static str, payload: String) -> StoreResult<()> {
        self.db
            .run(move |conn| {
                if let DbConnection::Postgres(_) = conn {
                    let mut sql = Sql::new("SELECT pg_notify(");
                    sql.bind(Bind::Text(channel.to_owned()))
                        .push(", ")
                        .bind(Bind::Text(payload))
                        .push(")");
                    sql.execute(conn)?;
                }
                Ok(())
            })
            .await
    }

    /// When the event `id` was recorded, if it is still kept.
    pub async fn signal_event_created(&self, id: i64) -> StoreResult<Option<OffsetDateTime>> {
        self.db
            .run(move |conn| {
                #[derive(QueryableByName)]
                struct Created {
                    #[diesel(sql_type = crate::db::sql_types::UtcTimestamp)]
                    created: OffsetDateTime,
                }
                let mut sql = Sql::new("SELECT created FROM signal_event WHERE id = ");
                sql.bind(Bind::BigInt(id));
                let rows = sql.load::<Created>(conn)?;
                Ok(rows.into_iter().next().map(|r| r.created))
            })
            .await
    }

    /// Deletes the events created before `cutoff`, except the newest event, which keeps telling
    /// resuming clients how far the ids went; gives how many.
    pub async fn prune_signal_events(&self, cutoff: OffsetDateTime) -> StoreResult<usize> {
        self.db
            .write(move |conn| {
                let mut sql = Sql::new(
                    "DELETE FROM signal_event WHERE id < (SELECT MAX(id) FROM signal_event) \
                     AND created < ",
                );
                sql.bind(Bind::Timestamp(cutoff));
                Ok(sql.execute(conn)?)
            })
            .await
    }
}
