//! PostgreSQL: plain sends of concurrent requests written together (group commit).
//!
//! Each send on its own costs a transaction: `BEGIN`, an INSERT per table, `COMMIT` and its WAL
//! flush, and the round trips in between. Sends queue here instead; a few lanes (threads with a
//! connection each) take whatever queued while they were busy, and write it in one transaction
//! with one multi-row INSERT per table. So the busier the service, the more sends share each
//! statement and each flush. A caller hears of its send only once that transaction committed.
//!
//! Only plain sends come here: no idempotency key and no scope. Those take no row locks, so two
//! batches cannot deadlock, and nothing in one send depends on another's rows. A keyed or scoped
//! send keeps its own transaction (see `notifications`). When a batch fails on a statement (a
//! bad row), each of its sends is written again on its own, so the failure stays with the send
//! that caused it; when the database is unreachable, every send of the batch hears so at once.
//! SQLite does not need this: its one writer already groups writes into one commit.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};

use diesel::result::Error as DieselError;

use super::deliveries::queue_deliveries;
use super::send::{
    INSERT_CHUNK, Recipient, SendContext, StoredNotification, Table, fresh, insert_rows,
    new_notification_signal, write_broadcast, write_for_users,
};
use super::signal_events::record_signals;
use super::{Committed, StoreResult};
use crate::db::{Db, DbConnection, DbError, write_transaction};
use crate::published_signal::PublishedSignal;

/// Sends per batch at most: a batch's statements stay well within PostgreSQL's limits and its
/// callers' wait short (large sends do not come here, see `MAX_RECIPIENTS`).
const MAX_BATCH: usize = 128;

/// A send to more recipients than this has its own transaction: it fills its statements by
/// itself, and small sends should not wait behind it.
pub(super) const MAX_RECIPIENTS: usize = 64;

/// Batches written at once (at most; fewer when the pool is small). Few, so that sends arriving
/// while the lanes are busy form large batches; more than one, so that one batch's commit flush
/// does not stall the next.
const LANES: usize = 3;

/// Whom a plain send is for.
pub(super) enum Target {
    Users(Vec<Recipient>),
    Broadcast(Box<Recipient>),
}

type Answer = StoreResult<Committed<Vec<StoredNotification>>>;

struct Job {
    send: SendContext,
    target: Target,
    answer: tokio::sync::oneshot::Sender<Answer>,
}

/// The queue of plain sends; its lanes end when the last handle is dropped.
#[derive(Clone)]
pub(super) struct SendBatcher {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for SendBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatcher").finish_non_exhaustive()
    }
}

impl SendBatcher {
    pub fn start(db: &Db) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        // Leave reads (a user send's settings among them) a connection of their own.
        let lanes = (db.max_connections() as usize)
            .saturating_sub(1)
            .clamp(1, LANES);
        for lane in 0..lanes {
            let (db, queue) = (db.clone(), Arc::clone(&queue));
            std::thread::Builder::new()
                .name(format!("send-batch-{lane}"))
                .spawn(move || run(&db, &queue))?;
        }
        Ok(Self { jobs })
    }

    /// Stores `send` for `target` in the next batch; returns once that batch committed. The
    /// result lists the notifications stored (one for a broadcast) with their signals.
    pub async fn write(&self, send: SendContext, target: Target) -> Answer {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let stopped = || DbError::Task("the send batcher stopped".into());
        self.jobs
            .send(Job {
                send,
                target,
                answer,
            })
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// A lane: takes the next send and whatever else is queued, writes them, answers them.
fn run(db: &Db, queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let batch = {
            let Ok(queue) = queue.lock() else { return };
            let Ok(first) = queue.recv() else { return };
            let mut batch = vec![first];
            batch.extend(queue.try_iter().take(MAX_BATCH - 1));
            batch
        };
        metrics::histogram!(crate::metrics::SEND_BATCH).record(batch.len() as f64);
        // A bug must not take the lane, and every later send, down with it: the batch's callers
        // hear of it (their answers are dropped), the lane goes on.
        if catch_unwind(AssertUnwindSafe(|| write_batch(db, queue, batch))).is_err() {
            tracing::error!("writing a batch of sends panicked");
        }
    }
}

fn write_batch(db: &Db, queue: &Mutex<mpsc::Receiver<Job>>, batch: Vec<Job>) {
    let mut conn = match db.pooled() {
        Ok(conn) => conn,
        Err(e) => {
            // The database is unreachable: whatever queued meanwhile would only wait as long
            // again, so it hears so now too. (A lane holding the queue waits on it empty.)
            let queued: Vec<Job> = match queue.try_lock() {
                Ok(queue) => queue.try_iter().collect(),
                Err(_) => Vec::new(),
            };
            return fail_all(batch.into_iter().chain(queued), e);
        }
    };
    match write_transaction(&mut conn, |conn| write_together(conn, &batch)) {
        Ok(committed) => {
            for (job, committed) in batch.into_iter().zip(committed) {
                // The caller may have gone (a dropped request); the send stands regardless.
                let _ = job.answer.send(Ok(committed));
            }
        }
        Err(e) if batch.len() > 1 && caused_by_a_row(&e) => {
            tracing::debug!(
                "a batch of {} sends failed ({e}); writing each alone",
                batch.len()
            );
            let mut jobs = batch.into_iter();
            while let Some(job) = jobs.next() {
                let alone = write_transaction(&mut conn, |c| write_alone(c, &job));
                match alone {
                    Err(e) if e.is_transient() => {
                        return fail_all(std::iter::once(job).chain(jobs), e);
                    }
                    alone => {
                        let _ = job.answer.send(alone);
                    }
                }
            }
        }
        Err(e) => fail_all(batch.into_iter(), e),
    }
}

/// Answers every one of `jobs` with `e`.
fn fail_all(jobs: impl Iterator<Item = Job>, e: DbError) {
    for job in jobs {
        let _ = job.answer.send(Err(e.duplicate()));
    }
}

/// Whether a failed batch may have failed because of one of its sends: a statement refused, not
/// the database unreachable, busy or full (where writing each alone would only make every
/// caller wait longer), nor a commit whose outcome is unknown (written again, it could be
/// stored twice).
fn caused_by_a_row(e: &DbError) -> bool {
    !e.is_transient()
        && matches!(
            e,
            DbError::Query(
                DieselError::DatabaseError(..)
                    | DieselError::SerializationError(_)
                    | DieselError::DeserializationError(_)
            )
        )
}

/// One send in its own transaction, by the statements a keyed or scoped send uses.
fn write_alone(conn: &mut DbConnection, job: &Job) -> Answer {
    match &job.target {
        Target::Users(recipients) => write_for_users(conn, &job.send, recipients),
        Target::Broadcast(broadcast) => {
            let committed = write_broadcast(conn, &job.send, broadcast)?;
            Ok(Committed {
                value: vec![committed.value],
                signals: committed.signals,
            })
        }
    }
}

/// Every send of the batch, one multi-row INSERT per table: what [`write_alone`] would store for
/// each of them, in the batch's order.
fn write_together(
    conn: &mut DbConnection,
    batch: &[Job],
) -> Result<Vec<Committed<Vec<StoredNotification>>>, DbError> {
    let mut inbox: Vec<(&SendContext, &Recipient)> = Vec::new();
    let mut broadcasts: Vec<(&SendContext, &Recipient)> = Vec::new();
    for job in batch {
        match &job.target {
            Target::Users(recipients) => {
                inbox.extend(recipients.iter().filter(|r| r.web).map(|r| (&job.send, r)));
            }
            Target::Broadcast(b) => broadcasts.push((&job.send, b)),
        }
    }
    for (table, rows) in [
        (Table::Notification, &inbox),
        (Table::Broadcast, &broadcasts),
    ] {
        for chunk in rows.chunks(INSERT_CHUNK) {
            let sql = insert_rows(table, chunk);
            sql.execute(conn)?;
        }
    }
    queue_deliveries(
        conn,
        batch.iter().flat_map(|job| {
            recipients(&job.target).map(|r| (&job.send, fresh(&job.send, r), r.channels.as_slice()))
        }),
    )?;
    let stored: Vec<Vec<StoredNotification>> = batch
        .iter()
        .map(|job| {
            recipients(&job.target)
                .filter(|r| r.web)
                .map(|r| StoredNotification {
                    notification: fresh(&job.send, r),
                    updated_existing: false,
                })
                .collect()
        })
        .collect();
    // Each signal names its notification, whose id is its send's own: that is how the recorded
    // events find their way back to their sends.
    let mut sender_of: HashMap<String, usize> = HashMap::new();
    let mut signals = Vec::new();
    for (i, sent) in stored.iter().enumerate() {
        for s in sent {
            let signal = new_notification_signal(s.notification.user.clone(), s);
            let message = serde_json::to_string(&signal.message)
                .map_err(|e| DieselError::SerializationError(Box::new(e)))?;
            sender_of.insert(message, i);
            signals.push(signal);
        }
    }
    let mut events: Vec<Vec<PublishedSignal>> = batch.iter().map(|_| Vec::new()).collect();
    for event in record_signals(conn, &signals)? {
        let i = sender_of
            .get(&event.message)
            .copied()
            .ok_or(DieselError::NotFound)?;
        events.get_mut(i).ok_or(DieselError::NotFound)?.push(event);
    }
    Ok(stored
        .into_iter()
        .zip(events)
        .map(|(value, signals)| Committed { value, signals })
        .collect())
}

/// The recipients of a send, inbox or not.
fn recipients(target: &Target) -> impl Iterator<Item = &Recipient> {
    match target {
        Target::Users(recipients) => recipients.iter(),
        Target::Broadcast(b) => std::slice::from_ref(&**b).iter(),
    }
}
