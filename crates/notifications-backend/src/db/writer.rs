//! SQLite's writer: one thread applies every write transaction of the process, several per
//! commit (group commit).
//!
//! SQLite lets one connection write at a time. With each request taking the lock itself, the
//! waiters sleep in SQLite's busy handler (1, 2, 5 … 100 ms steps), so a burst of writes stalls
//! for up to a second; and each commit pays its own fsync. Here writes queue in-process instead,
//! and whatever queued while one transaction ran joins the next: each write runs in a savepoint
//! of a shared `BEGIN IMMEDIATE` transaction, so one that fails is rolled back alone, and all of
//! them become durable with one fsync. A caller hears of its write only after that commit.
//! PostgreSQL needs none of this: its connections write concurrently and it groups the flushes
//! of concurrent commits itself.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::TransactionManager;
use diesel::result::Error as DieselError;

use super::transaction::begin_write;
use super::{ConnectionManager, DbConnection, DbError};

/// Writes per transaction at most, and how long a transaction keeps taking newcomers: enough to
/// share an fsync among many, little enough to keep each writer's wait short.
const MAX_GROUP: usize = 256;
const MAX_GROUP_TIME: Duration = Duration::from_millis(20);

/// A queued write: runs in its savepoint and returns what to do once the commit is known. Given
/// no connection (the pool had none, or the transaction could not start), it answers without
/// running.
type Job = Box<dyn FnOnce(Result<&mut DbConnection, &str>) -> Finish + Send>;

/// Hands the write's result to its caller, given the commit's outcome.
type Finish = Box<dyn FnOnce(&Result<(), CommitFailed>) + Send>;

/// Why a group's transaction did not commit (every write in it is then lost).
#[derive(Clone, Debug)]
struct CommitFailed {
    kind: Option<diesel::result::DatabaseErrorKind>,
    message: String,
}

impl CommitFailed {
    fn new(e: &DieselError) -> Self {
        match e {
            DieselError::DatabaseError(kind, info) => Self {
                kind: Some(*kind),
                message: info.message().to_owned(),
            },
            other => Self {
                kind: None,
                message: other.to_string(),
            },
        }
    }

    /// The same error for each caller, classified as the original would be (a full disk stays a
    /// database error, answered 503).
    fn to_db_error(&self) -> DbError {
        match self.kind {
            Some(kind) => DbError::Query(DieselError::DatabaseError(
                kind,
                Box::new(self.message.clone()),
            )),
            None => DbError::Task(format!("the write was not committed: {}", self.message)),
        }
    }
}

/// The handle the pool keeps; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(pool: r2d2::Pool<ConnectionManager>) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&pool, &queue))?;
        Ok(Self { jobs })
    }

    /// Runs `f` in a savepoint of the next group transaction; returns its result once that
    /// transaction committed (or the error that rolled it back).
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<DieselError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => in_savepoint(conn, f),
                Err(why) => Err(E::from(DbError::NoWriter(why.to_owned()))),
            };
            Box::new(move |commit: &Result<(), CommitFailed>| {
                let result = match (result, commit) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(failed)) => Err(E::from(failed.to_db_error())),
                    (Err(e), _) => Err(e),
                };
                // The caller may have gone (a dropped request); the write stands regardless.
                let _ = answer.send(result);
            })
        });
        if self.jobs.send(job).is_err() {
            return Err(E::from(DbError::Task("the database writer stopped".into())));
        }
        answered
            .await
            .map_err(|_| E::from(DbError::Task("the database writer stopped".into())))?
    }
}

/// `f` in a savepoint of the group's transaction: rolled back alone if it fails, or panics (a
/// bug must not take the writer thread, and every later write, down with it).
fn in_savepoint<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError> + From<DieselError>,
{
    match catch_unwind(AssertUnwindSafe(|| conn.transaction(f))) {
        Ok(result) => result,
        Err(_) => {
            // The panic left the savepoint open; if it cannot be rolled back, the group's
            // commit fails and every write in it reports that.
            if let Err(e) = DbConnection::rollback_transaction(conn) {
                tracing::error!("rolling back a write that panicked failed: {e}");
            }
            Err(E::from(DbError::Task("a write panicked".into())))
        }
    }
}

fn run(pool: &r2d2::Pool<ConnectionManager>, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut pooled = match pool.get() {
            Ok(conn) => conn,
            Err(e) => {
                refuse(first, queue, &e.to_string());
                continue;
            }
        };
        let conn: &mut DbConnection = &mut pooled;
        if let Err(e) = begin_write(conn) {
            refuse(first, queue, &e.to_string());
            continue;
        }
        let started = Instant::now();
        let mut finishes = vec![first(Ok(&mut *conn))];
        while finishes.len() < MAX_GROUP && started.elapsed() < MAX_GROUP_TIME {
            match queue.try_recv() {
                Ok(job) => finishes.push(job(Ok(&mut *conn))),
                Err(_) => break,
            }
        }
        let outcome = DbConnection::commit_transaction(conn).map_err(|e| {
            tracing::error!("a group of {} writes failed to commit: {e}", finishes.len());
            if let Err(rollback) = DbConnection::rollback_transaction(conn) {
                tracing::warn!("rollback failed: {rollback}");
            }
            CommitFailed::new(&e)
        });
        for finish in finishes {
            finish(&outcome);
        }
    }
}

/// Answers `first` and whatever else is queued right now without running them: nothing of
/// theirs was written.
fn refuse(first: Job, queue: &mpsc::Receiver<Job>, why: &str) {
    tracing::warn!("database writer: {why}");
    let not_run = Ok(());
    for job in std::iter::once(first).chain(queue.try_iter()) {
        job(Err(why))(&not_run);
    }
}

#[cfg(test)]
mod tests {
    use diesel::RunQueryDsl;
    use diesel::connection::SimpleConnection;

    use crate::db::{Db, PoolOptions, Target, per_backend};

    use super::*;

    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }

    fn insert(conn: &mut DbConnection, id: i64) -> Result<(), DbError> {
        conn.batch_execute(&format!("INSERT INTO t (id) VALUES ({id})"))?;
        Ok(())
    }

    async fn ids(db: &Db) -> Vec<i64> {
        db.run(|conn| {
            let rows = per_backend!(conn, |c| diesel::sql_query("SELECT id FROM t ORDER BY id")
                .load::<Id>(c));
            Ok::<_, DbError>(rows?.into_iter().map(|r| r.id).collect())
        })
        .await
        .unwrap()
    }

    async fn open() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Sqlite(dir.path().join("w.sqlite").display().to_string());
        let db = Db::open(target.clone(), &PoolOptions::for_target(&target)).unwrap();
        db.run(|conn| {
            conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
                .map_err(DbError::from)
        })
        .await
        .unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn writes_queued_meanwhile_share_a_commit_and_fail_alone() {
        let (_dir, db) = open().await;
        // The first write holds the writer while the others queue behind it.
        let first = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(|conn| {
                    std::thread::sleep(Duration::from_millis(300));
                    insert(conn, 1)
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Sees the first write's row (same transaction, not yet committed), so its second
        // insert breaks the key: its own first insert must go too.
        let failing = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(|conn| {
                    insert(conn, 2)?;
                    insert(conn, 1)
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let last = db.write(|conn| insert(conn, 3));
        let (first, failing, last) = (first.await.unwrap(), failing.await.unwrap(), last.await);
        first.unwrap();
        last.unwrap();
        match failing {
            Err(DbError::Query(DieselError::DatabaseError(kind, _))) => {
                assert!(matches!(
                    kind,
                    diesel::result::DatabaseErrorKind::UniqueViolation
                ));
            }
            other => panic!("expected a unique violation, got {other:?}"),
        }
        assert_eq!(ids(&db).await, [1, 3]);
    }

    #[tokio::test]
    async fn a_write_that_panics_fails_alone_and_the_writer_goes_on() {
        let (_dir, db) = open().await;
        let panicked = db
            .write(|conn| -> Result<(), DbError> {
                insert(conn, 7)?;
                panic!("a bug in a write");
            })
            .await;
        assert!(
            matches!(&panicked, Err(DbError::Task(m)) if m.contains("panicked")),
            "{panicked:?}"
        );
        db.write(|conn| insert(conn, 8)).await.unwrap();
        assert_eq!(ids(&db).await, [8]);
    }
}
