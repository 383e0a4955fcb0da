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
use diesel::connection::SimpleConnection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::R2D2Connection;
use diesel::result::Error as DieselError;

use super::transaction::begin_write;
use super::{ConnectionManager, DbConnection, DbError, per_backend};

/// Writes per transaction at most, and how long a transaction keeps taking newcomers: enough to
/// share an fsync among many, little enough to keep each writer's wait short.
const MAX_GROUP: usize = 256;
const MAX_GROUP_TIME: Duration = Duration::from_millis(20);

/// A queued write: runs in its savepoint and returns what to do once the commit is known. Given
/// no connection (the pool had none, or the transaction could not start), it answers without
/// running.
type Job = Box<dyn FnOnce(Result<&mut DbConnection, &str>) -> Finish + Send>;

/// Hands the write's result to its caller, given the commit's outcome.
type Finish = Box<dyn FnOnce(&Result<(), DbError>) + Send>;

/// The handle the pool keeps; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(source: Source) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(source, &queue))?;
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
                Err(why) => Err(E::from(DbError::NoConnection(why.to_owned()))),
            };
            Box::new(move |commit: &Result<(), DbError>| {
                let result = match (result, commit) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(failed)) => Err(E::from(failed.duplicate())),
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
            // The panic left the savepoint open. If it cannot be rolled back, the group's
            // transaction is no longer intact and the whole group fails (see `run`).
            if let Err(e) = DbConnection::rollback_transaction(conn) {
                tracing::error!("rolling back a write that panicked failed: {e}");
            }
            Err(E::from(DbError::Task("a write panicked".into())))
        }
    }
}

/// Whether the group's transaction is as every write must leave it: open, one level deep, not
/// broken. A savepoint that could not be rolled back leaves it otherwise, and so does SQLite
/// rolling back the whole transaction by itself (a full disk, an I/O error): the next write
/// would then run outside it and commit on its own.
fn transaction_intact(conn: &mut DbConnection) -> bool {
    let depth = per_backend!(conn, |c| {
        AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()
    });
    matches!(depth, Ok(Some(depth)) if depth.get() == 1)
}

/// The connection each group is written on.
pub enum Source {
    /// A file database: the writer keeps one connection of its own, outside the pool. SQLite
    /// empties a connection's page cache whenever another connection has written since it last
    /// read, so a writer borrowing the pool's connections (which readers use in between) read
    /// every page it touched anew in each group.
    Own {
        manager: ConnectionManager,
        conn: Option<DbConnection>,
    },
    /// An in-memory database, whose pool has its one connection.
    Pool(r2d2::Pool<ConnectionManager>),
}

impl Source {
    pub fn own(manager: ConnectionManager) -> Self {
        Self::Own {
            manager,
            conn: None,
        }
    }
}

fn run(mut source: Source, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut pooled;
        let conn: &mut DbConnection = match &mut source {
            Source::Own { manager, conn } => match conn {
                Some(conn) => conn,
                None => match establish_own(manager) {
                    Ok(own) => conn.insert(own),
                    Err(e) => {
                        refuse(first, queue, &e.to_string());
                        continue;
                    }
                },
            },
            Source::Pool(pool) => match pool.get() {
                Ok(conn) => {
                    pooled = conn;
                    &mut pooled
                }
                Err(e) => {
                    refuse(first, queue, &e.to_string());
                    continue;
                }
            },
        };
        if let Err(e) = begin_write(conn) {
            refuse(first, queue, &e.to_string());
            continue;
        }
        let started = Instant::now();
        let mut finishes = Vec::new();
        let mut next = Some(first);
        let mut intact = true;
        while let Some(job) = next.take() {
            finishes.push(job(Ok(&mut *conn)));
            intact = transaction_intact(conn);
            if intact && finishes.len() < MAX_GROUP && started.elapsed() < MAX_GROUP_TIME {
                next = queue.try_recv().ok();
            }
        }
        // Once per commit (a registry lookup), nothing per write.
        metrics::histogram!(crate::metrics::WRITE_GROUP).record(finishes.len() as f64);
        let outcome = if intact {
            // On failure diesel has rolled the transaction back already.
            DbConnection::commit_transaction(conn).map_err(|e| {
                tracing::error!("a group of {} writes failed to commit: {e}", finishes.len());
                DbError::Query(e)
            })
        } else {
            let message = format!(
                "a write left the group's transaction broken; none of its {} writes were kept",
                finishes.len()
            );
            tracing::error!("{message}");
            // Whatever remains of it goes; a connection still mid-transaction afterwards is
            // discarded by the pool (`has_broken`).
            let _ = DbConnection::rollback_transaction(conn);
            Err(DbError::Task(message))
        };
        for finish in finishes {
            finish(&outcome);
        }
        // As the pool would (`has_broken`): a connection left mid-transaction is not reused.
        if let Source::Own { conn, .. } = &mut source
            && conn.as_mut().is_some_and(|c| c.is_broken())
        {
            *conn = None;
        }
    }
}

/// The writer's own connection keeps its savepoint journals in memory: each write's savepoint
/// copies every page the write changes first, and SQLite otherwise spills those copies to a
/// temporary file (a `pwrite` per page) once they pass 64 KiB.
fn establish_own(manager: &ConnectionManager) -> Result<DbConnection, String> {
    let mut conn = manager.establish().map_err(|e| e.to_string())?;
    conn.batch_execute("PRAGMA temp_store = MEMORY")
        .map_err(|e| e.to_string())?;
    Ok(conn)
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

    /// Rows of `t` as another connection sees them: committed ones only.
    fn committed_rows(path: &str) -> i64 {
        let mut other = diesel::SqliteConnection::establish(path).unwrap();
        diesel::sql_query("SELECT COUNT(*) AS id FROM t")
            .get_result::<Id>(&mut other)
            .unwrap()
            .id
    }

    /// Occupies the writer for a while, so that the writes sent meanwhile queue up and then
    /// form one group.
    fn hold_the_writer(db: &Db) -> tokio::task::JoinHandle<Result<(), DbError>> {
        let db = db.clone();
        tokio::spawn(async move {
            db.write(|_| {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            })
            .await
        })
    }

    /// Hands `f` to the writer before returning (so writes queue in call order); its result
    /// comes from the task.
    async fn queue<F>(db: &Db, f: F) -> tokio::task::JoinHandle<Result<(), DbError>>
    where
        F: FnOnce(&mut DbConnection) -> Result<(), DbError> + Send + 'static,
    {
        let db = db.clone();
        let mut write = Box::pin(async move { db.write(f).await });
        // The first poll queues the write; it then waits for its group to commit.
        let ready = tokio::select! {
            biased;
            result = &mut write => Some(result),
            () = std::future::ready(()) => None,
        };
        match ready {
            Some(result) => tokio::spawn(async move { result }),
            None => tokio::spawn(write),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_meanwhile_share_a_commit_and_fail_alone() {
        let (dir, db) = open().await;
        let path = dir.path().join("w.sqlite").display().to_string();
        let holder = hold_the_writer(&db);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let first = queue(&db, |conn| insert(conn, 1)).await;
        // In the same transaction as the first: another connection does not see row 1 yet, and
        // inserting it again breaks the key, so this write's own first insert must go too.
        let (seen_tx, seen) = std::sync::mpsc::channel();
        let failing = queue(&db, move |conn| {
            seen_tx.send(committed_rows(&path)).unwrap();
            insert(conn, 2)?;
            insert(conn, 1)
        })
        .await;
        let last = queue(&db, |conn| insert(conn, 3)).await;
        holder.await.unwrap().unwrap();
        let (first, failing, last) = (
            first.await.unwrap(),
            failing.await.unwrap(),
            last.await.unwrap(),
        );
        assert_eq!(
            seen.recv().unwrap(),
            0,
            "the first write had committed alone"
        );
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_breaks_the_transaction_fails_its_group_and_no_more() {
        let (_dir, db) = open().await;
        let holder = hold_the_writer(&db);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let first = queue(&db, |conn| insert(conn, 10)).await;
        // As SQLite does by itself after a full disk or an I/O error: the whole transaction is
        // gone under diesel's feet.
        let breaking = queue(&db, |conn| {
            insert(conn, 11)?;
            conn.batch_execute("ROLLBACK")?;
            Ok(())
        })
        .await;
        let after = queue(&db, |conn| insert(conn, 12)).await;
        holder.await.unwrap().unwrap();
        let (first, breaking, after) = (
            first.await.unwrap(),
            breaking.await.unwrap(),
            after.await.unwrap(),
        );
        assert!(first.is_err(), "its group did not commit: {first:?}");
        assert!(breaking.is_err(), "{breaking:?}");
        after.unwrap();
        assert_eq!(ids(&db).await, [12], "nothing of the broken group was kept");
    }

    /// The writer keeps its connection between groups; what other connections commit meanwhile
    /// must still be what its next group reads.
    #[tokio::test]
    async fn the_writer_reads_what_other_connections_committed() {
        let (_dir, db) = open().await;
        db.write(|conn| insert(conn, 1)).await.unwrap();
        db.run(|conn| crate::db::write_transaction(conn, |c| insert(c, 2)))
            .await
            .unwrap();
        let again = db.write(|conn| insert(conn, 2)).await;
        assert!(
            matches!(&again, Err(DbError::Query(e)) if e.to_string().contains("UNIQUE")),
            "{again:?}"
        );
        db.write(|conn| insert(conn, 3)).await.unwrap();
        assert_eq!(ids(&db).await, [1, 2, 3]);
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
