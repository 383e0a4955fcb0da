//! Writing notifications: create (or update by scope) for many users at once, broadcasts, and
//! the read/saved marks.

use notifications_common::{Notification, NotificationId, NotificationSignal, UserRef};
use time::OffsetDateTime;

use super::idempotency::{self, Answer, IdempotentSend, Written};
use super::list::get_many;
use super::send::{Recipient, SendContext, StoredNotification, write_broadcast, write_for_users};
use super::send_batch::{MAX_RECIPIENTS, SendBatcher, Target};
use super::signal_events::{NewSignal, record_signals};
use super::{Committed, Store, StoreResult};
use crate::db::{Bind, DbConnection, DbError, Sql};

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
    /// [`IdempotentSend`]); `answer` renders the answer recorded with the key.
    pub async fn create_for_users_keyed(
        &self,
        send: SendContext,
        recipients: Vec<Recipient>,
        key: Option<IdempotentSend>,
        answer: impl FnOnce(&[StoredNotification]) -> Result<Answer, DbError> + Send + 'static,
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
                idempotency::once(conn, &send.origin, key, write, |c| answer(&c.value))
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
    /// [`IdempotentSend`]); `answer` renders the answer recorded with the key.
    pub async fn create_broadcast_keyed(
        &self,
        send: SendContext,
        broadcast: Recipient,
        key: Option<IdempotentSend>,
        answer: impl FnOnce(&[StoredNotification]) -> Result<Answer, DbError> + Send + 'static,
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
                    answer(std::slice::from_ref(&c.value))
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
        user: &UserRef,
        ids: Vec<NotificationId>,
        read: Option<Option<OffsetDateTime>>,
        saved: Option<Option<OffsetDateTime>>,
        signal: Option<NotificationSignal>,
    ) -> StoreResult<Committed<Vec<Notification>>> {
        let user = user.as_str().to_owned();
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

/// Sets one state column (`read` or `saved`) on the user's own rows and on their status rows of
/// the broadcasts among `ids`, leaving the other column alone (upstream's PostgreSQL path clears
/// it, see the contract's quirk 1).
fn set_state(
    conn: &mut DbConnection,
    user: &str,
    ids: &[NotificationId],
    column: &'static str,
    value: Option<OffsetDateTime>,
) -> diesel::QueryResult<()> {
    let id_list = || ids.iter().map(|id| Bind::Uuid(id.0));

    let mut own = Sql::new(&format!("UPDATE notification SET {column} = "));
    own.bind(Bind::OptTimestamp(value))
        .push(" WHERE user_ref = ")
        .bind(Bind::Text(user.to_owned()))
        .push(" AND id IN ")
        .bind_list(id_list());
    own.execute(conn)?;

    let mut broadcasts = Sql::new("SELECT b.id AS id FROM broadcast b WHERE b.id IN ");
    broadcasts.bind_list(id_list());
    upsert_broadcast_mark(user, column, value, &broadcasts).execute(conn)?;
    Ok(())
}

/// Sets one mark (`read` or `saved`) of the user on the broadcasts that `broadcasts` (a `SELECT`
/// of their ids as `id`) selects, making their status rows where there are none. Callers may
/// append a `WHERE` to the `DO UPDATE`, then `RETURNING`.
pub(super) fn upsert_broadcast_mark(
    user: &str,
    column: &'static str,
    value: Option<OffsetDateTime>,
    broadcasts: &Sql,
) -> Sql {
    let mut sql = Sql::new(&format!(
        "INSERT INTO broadcast_user_status (broadcast_id, user_ref, {column}) SELECT m.id, "
    ));
    sql.bind(Bind::Text(user.to_owned()))
        .push(", ")
        .bind(Bind::OptTimestamp(value))
        .push(" FROM (")
        .append(broadcasts)
        // `WHERE true`: SQLite would read the ON of ON CONFLICT as a join's.
        .push(&format!(
            ") m WHERE true ON CONFLICT (broadcast_id, user_ref) DO UPDATE SET {column} = \
             excluded.{column}"
        ));
    sql
}
