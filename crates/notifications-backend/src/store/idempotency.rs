//! The answers to sends made with an `Idempotency-Key`, per origin, for 24 hours.
//!
//! A key is claimed in the transaction that stores the send, by inserting its row: the primary
//! key (origin, key) lets one transaction through, and a concurrent one with the same key waits
//! on it (PostgreSQL: the unique index; SQLite: the write lock) and then finds the answer.

use diesel::QueryableByName;
use diesel::sql_types::{Integer, Text};
use time::OffsetDateTime;

use super::{Store, StoreResult};
use crate::db::{Bind, DbConnection, DbError, Sql};

/// How long a key is remembered; a key older than this is free again.
pub const IDEMPOTENCY_KEY_LIFETIME: time::Duration = time::Duration::hours(24);

/// A send made with a key.
#[derive(Clone, Debug)]
pub struct IdempotentSend {
    pub key: String,
    /// Tells a repeated request from another request under the same key.
    pub request_hash: String,
}

/// An answer as recorded.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct Answer {
    #[diesel(sql_type = Integer)]
    pub status: i32,
    #[diesel(sql_type = Text)]
    pub body: String,
}

/// A key's row: the request it was first used with and the answer to it.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct Recorded {
    #[diesel(sql_type = Text)]
    pub request_hash: String,
    #[diesel(embed)]
    pub answer: Answer,
}

/// What a send did: stored something (and, under a key, recorded its answer), or found its key
/// already used (the key is given back with what it was used for).
#[derive(Debug)]
pub enum Written<T> {
    Stored(T, Option<Answer>),
    Used(IdempotentSend, Recorded),
}

impl Store {
    /// The live record of `key` from `origin`, if any.
    pub async fn idempotency_record(
        &self,
        origin: &str,
        key: &str,
    ) -> StoreResult<Option<Recorded>> {
        let (origin, key) = (origin.to_owned(), key.to_owned());
        self.db
            .run(move |conn| Ok::<_, DbError>(find(conn, &origin, &key)?))
            .await
    }

    /// Deletes the keys that expired by `now`; returns how many.
    pub async fn delete_expired_idempotency_keys(&self, now: OffsetDateTime) -> StoreResult<u64> {
        let mut sql = Sql::new("DELETE FROM idempotency_key WHERE created <= ");
        sql.bind(Bind::Timestamp(now - IDEMPOTENCY_KEY_LIFETIME));
        self.db
            .write(move |conn| Ok::<_, DbError>(sql.execute(conn)? as u64))
            .await
    }
}

/// Runs `write` (a send's statements, inside its transaction) under `send`'s key, if any:
/// claims the key first, and records the answer `answer` renders from what `write` stored, in
/// the same transaction, so that the recorded answer is exactly the one given. A key already
/// used skips `write`.
pub(super) fn once<T>(
    conn: &mut DbConnection,
    origin: &str,
    send: Option<IdempotentSend>,
    write: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
    answer: impl FnOnce(&T) -> Result<Answer, DbError>,
) -> Result<Written<T>, DbError> {
    let Some(send) = send else {
        return Ok(Written::Stored(write(conn)?, None));
    };
    let now = OffsetDateTime::now_utc();
    // An expired row would block the claim until the cleaner's next run: it goes first.
    let mut expired = Sql::new("DELETE FROM idempotency_key WHERE origin = ");
    expired
        .bind(Bind::Text(origin.to_owned()))
        .push(" AND idempotency_key = ")
        .bind(Bind::Text(send.key.clone()))
        .push(" AND created <= ")
        .bind(Bind::Timestamp(now - IDEMPOTENCY_KEY_LIFETIME));
    expired.execute(conn)?;
    // The answer is not known yet: the row is claimed with a placeholder and completed below,
    // in the same transaction, so nobody ever reads the placeholder.
    let mut claim = Sql::new(
        "INSERT INTO idempotency_key (origin, idempotency_key, request_hash, response_status, \
         response_body, created) VALUES (",
    );
    claim
        .bind(Bind::Text(origin.to_owned()))
        .push(", ")
        .bind(Bind::Text(send.key.clone()))
        .push(", ")
        .bind(Bind::Text(send.request_hash.clone()))
        .push(", 0, '', ")
        .bind(Bind::Timestamp(now))
        .push(") ON CONFLICT (origin, idempotency_key) DO NOTHING");
    if claim.execute(conn)? == 0 {
        let recorded = find(conn, origin, &send.key)?.ok_or(diesel::result::Error::NotFound)?;
        return Ok(Written::Used(send, recorded));
    }
    let value = write(conn)?;
    let answer = answer(&value)?;
    let mut record = Sql::new("UPDATE idempotency_key SET response_status = ");
    record
        .bind(Bind::BigInt(answer.status.into()))
        .push(", response_body = ")
        .bind(Bind::Text(answer.body.clone()))
        .push(" WHERE origin = ")
        .bind(Bind::Text(origin.to_owned()))
        .push(" AND idempotency_key = ")
        .bind(Bind::Text(send.key.clone()));
    record.execute(conn)?;
    Ok(Written::Stored(value, Some(answer)))
}

fn find(conn: &mut DbConnection, origin: &str, key: &str) -> diesel::QueryResult<Option<Recorded>> {
    let mut sql = Sql::new(
        "SELECT request_hash, response_status AS status, response_body AS body \
         FROM idempotency_key WHERE origin = ",
    );
    sql.bind(Bind::Text(origin.to_owned()))
        .push(" AND idempotency_key = ")
        .bind(Bind::Text(key.to_owned()))
        .push(" AND created > ")
        .bind(Bind::Timestamp(
            OffsetDateTime::now_utc() - IDEMPOTENCY_KEY_LIFETIME,
        ));
    let mut rows: Vec<Recorded> = sql.load::<Recorded>(conn)?;
    Ok(rows.pop())
}
