//! `import`: upstream Backstage notifications 0.6.x data (its `notification`, `broadcast`,
//! `broadcast_user_status` and `user_settings` tables, in another database) copied into this
//! service's. Batches in key order, one transaction each; rows are inserted when their id is
//! absent, so a second run (after an interruption, or to catch up) imports nothing twice. A row
//! that breaks a rule of this service is reported with the reason and skipped; a broadcast goes
//! with all its marks or not at all.

mod convert;
mod progress;
mod source;

use std::collections::HashMap;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use std::path::Path;

use crate::config::{DatabaseConfig, SqliteLocation};
use crate::db::{Backend, Db, DbConnection, deferred_indexes, write_transaction};
use crate::server::{DEFAULT_SQLITE_FILE, open_database, with_tls_files};
use crate::store::Store;
use crate::store::import::{self as write, IdOutcome};
use progress::Progress;
use source::{Source, UpstreamMark, table_columns};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the source database: {0}")]
    Source(String),
    #[error("the target database: {0}")]
    Target(String),
}

/// What `import` is asked to do.
#[derive(Debug)]
pub struct ImportOptions {
    /// Upstream's database.
    pub source: DatabaseConfig,
    /// Rows read and written per transaction.
    pub batch_size: u32,
    /// Count what would be imported; write nothing.
    pub dry_run: bool,
    /// Draw progress bars (stderr is a terminal) rather than log lines.
    pub progress_bars: bool,
}

/// What became of one table's rows.
#[derive(Debug, Default)]
pub struct TableCount {
    pub table: &'static str,
    pub read: u64,
    pub imported: u64,
    /// Imported by an earlier run.
    pub present: u64,
    pub skipped: u64,
    /// From the first read to the last write (indexes made again included); `None` for the
    /// broadcasts' marks, which go with the broadcasts.
    pub elapsed: Option<std::time::Duration>,
}

/// A row not imported.
#[derive(Debug)]
pub struct Skipped {
    pub table: &'static str,
    /// Its id (a broadcast's for a mark; upstream's settings key for a setting).
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub counts: Vec<TableCount>,
    pub skipped: Vec<Skipped>,
    /// True when the target was not migrated yet (a dry run does not migrate it): the counts
    /// then assume it holds none of the rows.
    pub target_empty: bool,
}

/// Why a row with a new id was not inserted: this service keeps scopes unique, upstream did not.
fn scope_taken(table: &str) -> String {
    let whose = if table == "broadcast" {
        "broadcast with the same origin"
    } else {
        "notification with the same user, origin"
    };
    format!("another {whose} and scope is already stored (this service keeps them unique)")
}

/// Imports into the configured database (`target`, in `data_dir` as `serve` opens it), migrated
/// first unless this is a dry run.
pub async fn import(
    options: ImportOptions,
    target: &DatabaseConfig,
    data_dir: &Path,
) -> Result<Summary, ImportError> {
    if same_database(&options.source, target, data_dir) {
        return Err(ImportError::Source(
            "it is the configured database itself: name upstream's database (--from or \
             --from-config), and configure this service's own with --config"
                .into(),
        ));
    }
    // Two connections: a second builds indexes beside the first (see `restore_indexes`).
    let (db, _) = open_database(target, data_dir, Some(2))
        .await
        .map_err(|e| ImportError::Target(e.to_string()))?;
    let backend = db.backend();
    let pending = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db
                .pooled()
                .map_err(|e| ImportError::Target(e.to_string()))?;
            let columns = table_columns(&mut conn, "notification")
                .map_err(|e| ImportError::Target(e.to_string()))?;
            if columns.iter().any(|c| c == "user") {
                return Err(ImportError::Target(
                    "it holds upstream's notifications tables: configure a database of this \
                     service's own as the target, and name upstream's as the source"
                        .into(),
                ));
            }
            crate::db::migrations::has_pending(&mut conn)
                .map_err(|e| ImportError::Target(e.to_string()))
        })
        .await
        .map_err(|e| ImportError::Target(e.to_string()))??
    };
    let dry_run = options.dry_run;
    if !dry_run {
        db.migrate()
            .await
            .map_err(|e| ImportError::Target(e.to_string()))?;
    }
    let summary = {
        let db = db.clone();
        let source = with_tls_files(&options.source, data_dir)
            .map_err(|e| ImportError::Source(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let mut source = Source::open(&source)?;
            source.check_schema()?;
            let mut conn = db
                .pooled()
                .map_err(|e| ImportError::Target(e.to_string()))?;
            if let DbConnection::Postgres(pg) = &mut *conn {
                // A batch lost to a crash of the server is imported by the next run: its commit
                // need not wait for the WAL to reach the disk.
                pg.batch_execute("SET synchronous_commit = off")
                    .map_err(|e| ImportError::Target(e.to_string()))?;
            }
            // A dry run against a target not migrated yet cannot try its writes.
            let target = (!(options.dry_run && pending)).then_some(&mut *conn);
            Run::new(&options, db.clone(), target).all(&mut source)
        })
        .await
        .map_err(|e| ImportError::Target(e.to_string()))??
    };
    if backend == Backend::Postgres && !dry_run {
        // The triggers recorded the counts as changes; fold them now rather than leave every
        // count to add them up until a server does.
        Store::new(db)
            .fold_inbox_counts()
            .await
            .map_err(|e| ImportError::Target(e.to_string()))?;
    }
    Ok(summary)
}

/// One import's state: where it writes and what it found.
struct Run<'a> {
    options: &'a ImportOptions,
    /// The target's pool, for a second connection.
    db: Db,
    target: Option<&'a mut DbConnection>,
    summary: Summary,
}

impl<'a> Run<'a> {
    fn new(options: &'a ImportOptions, db: Db, target: Option<&'a mut DbConnection>) -> Self {
        let target_empty = target.is_none();
        Self {
            options,
            db,
            target,
            summary: Summary {
                target_empty,
                ..Summary::default()
            },
        }
    }

    fn all(mut self, source: &mut Source) -> Result<Summary, ImportError> {
        self.notifications(source)?;
        self.broadcasts(source)?;
        self.settings(source)?;
        Ok(self.summary)
    }

    fn limit(&self) -> i64 {
        i64::from(self.options.batch_size.max(1))
    }

    fn progress(&self, table: &'static str, source: &mut Source) -> Result<Progress, ImportError> {
        Ok(Progress::start(
            table,
            source.count(table)?,
            self.options.progress_bars,
        ))
    }

    fn skip(&mut self, table: &'static str, key: String, reason: String) {
        tracing::warn!("skipped {table} {key}: {reason}");
        self.summary.skipped.push(Skipped { table, key, reason });
    }

    /// Runs `f` in a transaction of its own (rolled back in a dry run); `assumed` is the
    /// answer when there is nothing to try it on.
    fn batch<T>(
        &mut self,
        f: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<T>,
        assumed: impl FnOnce() -> T,
    ) -> Result<T, ImportError> {
        enum Stop<T> {
            Failed(diesel::result::Error),
            DryRun(T),
        }
        impl<T> From<diesel::result::Error> for Stop<T> {
            fn from(e: diesel::result::Error) -> Self {
                Self::Failed(e)
            }
        }
        let dry_run = self.options.dry_run;
        let Some(conn) = self.target.as_deref_mut() else {
            return Ok(assumed());
        };
        match write_transaction(conn, |c| {
            let done = f(c)?;
            if dry_run {
                Err(Stop::DryRun(done))
            } else {
                Ok(done)
            }
        }) {
            Ok(done) | Err(Stop::DryRun(done)) => Ok(done),
            Err(Stop::Failed(e)) => Err(ImportError::Target(e.to_string())),
        }
    }

    /// Counts an id-keyed outcome and reports the rows refused for their scope.
    fn tally(&mut self, table: &'static str, read: usize, outcome: &IdOutcome) -> TableCount {
        for id in &outcome.conflicting {
            self.skip(table, id.to_string(), scope_taken(table));
        }
        TableCount {
            table,
            read: read as u64,
            imported: outcome.inserted as u64,
            present: outcome.present as u64,
            skipped: (read - outcome.inserted - outcome.present) as u64,
            elapsed: None,
        }
    }

    fn notifications(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let started = Instant::now();
        let mut progress = self.progress("notification", source)?;
        let mut total = TableCount {
            table: "notification",
            ..TableCount::default()
        };
        let deferred = self.defer_indexes()?;
        let limit = self.limit();
        // The next batch is read while this one is written: the source and the target are two
        // servers (or two files), each busy half the time otherwise.
        let loaded = std::thread::scope(|scope| {
            let (batches, received) = std::sync::mpsc::sync_channel(1);
            scope.spawn(move || {
                let mut after: Option<String> = None;
                loop {
                    let rows = source.notifications(after.as_deref(), limit);
                    after = match &rows {
                        Ok(rows) => rows.last().map(|last| last.id.clone()),
                        Err(_) => None,
                    };
                    // Stops when the writer has (a failure) or after the last batch.
                    if batches.send(rows).is_err() || after.is_none() {
                        break;
                    }
                }
            });
            for rows in received {
                let rows = rows?;
                if rows.is_empty() {
                    break;
                }
                let read = rows.len();
                let mut valid = Vec::with_capacity(read);
                for row in rows {
                    let key = row.id.clone();
                    match convert::notification(row) {
                        Ok(n) => valid.push(n),
                        Err(reason) => self.skip("notification", key, reason),
                    }
                }
                let outcome = self.batch(
                    |c| write::insert_notifications(c, &valid),
                    || IdOutcome {
                        inserted: valid.len(),
                        ..IdOutcome::default()
                    },
                )?;
                add(&mut total, &self.tally("notification", read, &outcome));
                progress.advance(read as u64);
            }
            Ok::<_, ImportError>(())
        });
        if let Err(failed) = loaded {
            // The rows imported so far stay (each batch committed); their indexes are made
            // now rather than at the next start, so that a running server is not left without.
            if let Err(e) = self.restore_indexes(deferred) {
                tracing::warn!("could not make the indexes again (the next start will): {e}");
            }
            return Err(failed);
        }
        progress.finish();
        self.restore_indexes(deferred)?;
        total.elapsed = Some(started.elapsed());
        self.summary.counts.push(total);
        Ok(())
    }

    /// Into an empty `notification` table, the load goes without its secondary indexes (see
    /// `db::deferred_indexes`); returns those dropped, in the order to make them.
    fn defer_indexes(&mut self) -> Result<Vec<String>, ImportError> {
        if self.options.dry_run {
            return Ok(Vec::new());
        }
        let Some(conn) = self.target.as_deref_mut() else {
            return Ok(Vec::new());
        };
        if !write::no_notifications(conn).map_err(target_error)? {
            return Ok(Vec::new());
        }
        let deferred = deferred_indexes::defer(conn, "notification").map_err(target_error)?;
        if deferred.is_empty() {
            return Ok(deferred);
        }
        tracing::info!(
            "the target holds no notifications: loading them without their {} secondary \
             indexes, made once at the end",
            deferred.len()
        );
        deferred_indexes::pending(conn).map_err(target_error)
    }

    /// Makes the deferred indexes, on as many connections as the pool gives (PostgreSQL builds
    /// two at once on two cores; SQLite builds one at a time whatever is asked).
    fn restore_indexes(&mut self, names: Vec<String>) -> Result<(), ImportError> {
        if names.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let queue = std::sync::Mutex::new(std::collections::VecDeque::from(names));
        let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
        let work = |conn: &mut DbConnection| -> Result<(), ImportError> {
            while let Some(name) = next() {
                deferred_indexes::restore_one(conn, &name).map_err(target_error)?;
            }
            Ok(())
        };
        let helper = match self.db.backend() {
            Backend::Postgres => match self.db.pooled() {
                Ok(helper) => Some(helper),
                Err(e) => {
                    tracing::info!("making the indexes on one connection: no second one ({e})");
                    None
                }
            },
            Backend::Sqlite => None,
        };
        let Some(conn) = self.target.as_deref_mut() else {
            return Ok(());
        };
        std::thread::scope(|scope| {
            let second = helper.map(|mut helper| scope.spawn(move || work(&mut helper)));
            let first = work(conn);
            let second = match second {
                Some(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(ImportError::Target("an index build panicked".into()))),
                None => Ok(()),
            };
            first.and(second)
        })?;
        tracing::info!(
            "made the secondary indexes of notification in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn broadcasts(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let started = Instant::now();
        let mut progress = self.progress("broadcast", source)?;
        let mut total = TableCount {
            table: "broadcast",
            ..TableCount::default()
        };
        let mut marks_total = TableCount {
            table: "broadcast_user_status",
            ..TableCount::default()
        };
        let mut after: Option<String> = None;
        loop {
            let rows = source.broadcasts(after.as_deref(), self.limit())?;
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                break;
            };
            let marks = source.marks(&first.id, &last.id)?;
            after = Some(last.id.clone());
            let read = rows.len();
            marks_total.read += marks.len() as u64;
            let mut marks_of: HashMap<String, Vec<UpstreamMark>> = HashMap::new();
            for mark in marks {
                marks_of
                    .entry(mark.broadcast_id.clone())
                    .or_default()
                    .push(mark);
            }
            let mut valid = Vec::with_capacity(read);
            for row in rows {
                let key = row.id.clone();
                let marks = marks_of.remove(&key).unwrap_or_default();
                let count = marks.len() as u64;
                match convert::broadcast(row, marks) {
                    Ok(b) => valid.push(b),
                    Err(reason) => {
                        marks_total.skipped += count;
                        self.skip("broadcast", key, reason);
                    }
                }
            }
            let (outcome, marks_inserted) = self.batch(
                |c| write::insert_broadcasts(c, &valid),
                || {
                    let marks = valid.iter().map(|b| b.marks.len()).sum();
                    let inserted = IdOutcome {
                        inserted: valid.len(),
                        ..IdOutcome::default()
                    };
                    (inserted, marks)
                },
            )?;
            let valid_marks: usize = valid.iter().map(|b| b.marks.len()).sum();
            let refused_marks: usize = valid
                .iter()
                .filter(|b| outcome.conflicting.contains(&b.id))
                .map(|b| b.marks.len())
                .sum();
            marks_total.imported += marks_inserted as u64;
            marks_total.skipped += refused_marks as u64;
            marks_total.present += (valid_marks - refused_marks - marks_inserted) as u64;
            add(&mut total, &self.tally("broadcast", read, &outcome));
            progress.advance(read as u64);
        }
        progress.finish();
        total.elapsed = Some(started.elapsed());
        self.summary.counts.push(total);
        self.summary.counts.push(marks_total);
        Ok(())
    }

    fn settings(&mut self, source: &mut Source) -> Result<(), ImportError> {
        let started = Instant::now();
        let mut progress = self.progress("user_settings", source)?;
        let mut total = TableCount {
            table: "user_settings",
            ..TableCount::default()
        };
        let mut after: Option<String> = None;
        loop {
            let rows = source.settings(after.as_deref(), self.limit())?;
            let Some(last) = rows.last() else { break };
            after = Some(last.settings_key_hash.clone());
            let read = rows.len();
            let mut valid = Vec::with_capacity(read);
            for row in rows {
                let key = row.settings_key_hash.clone();
                match convert::setting(row) {
                    Ok(s) => valid.push(s),
                    Err(reason) => self.skip("user_settings", key, reason),
                }
            }
            let inserted = self.batch(|c| write::insert_settings(c, &valid), || valid.len())?;
            total.read += read as u64;
            total.imported += inserted as u64;
            total.present += (valid.len() - inserted) as u64;
            total.skipped += (read - valid.len()) as u64;
            progress.advance(read as u64);
        }
        progress.finish();
        total.elapsed = Some(started.elapsed());
        self.summary.counts.push(total);
        Ok(())
    }
}

fn target_error(e: impl std::fmt::Display) -> ImportError {
    ImportError::Target(e.to_string())
}

fn add(total: &mut TableCount, batch: &TableCount) {
    total.read += batch.read;
    total.imported += batch.imported;
    total.present += batch.present;
    total.skipped += batch.skipped;
}

/// Whether the source names the target database itself (upstream's tables have the same names
/// as this service's, so that would be a mistake).
fn same_database(source: &DatabaseConfig, target: &DatabaseConfig, data_dir: &Path) -> bool {
    let sqlite_file = |config: &DatabaseConfig| match config {
        DatabaseConfig::Sqlite { location: None } => Some(data_dir.join(DEFAULT_SQLITE_FILE)),
        DatabaseConfig::Sqlite {
            location: Some(SqliteLocation::File(path)),
        } => Some(path.clone()),
        _ => None,
    };
    match (source, target) {
        (DatabaseConfig::Postgres(s), DatabaseConfig::Postgres(t)) => {
            s.url == t.url
                || matches!(
                    (postgres_place(&s.url), postgres_place(&t.url)),
                    (Some(s), Some(t)) if s == t
                )
        }
        _ => match (sqlite_file(source), sqlite_file(target)) {
            (Some(s), Some(t)) => {
                s == t || matches!((s.canonicalize(), t.canonicalize()), (Ok(s), Ok(t)) if s == t)
            }
            _ => false,
        },
    }
}

/// Host, port and database of a PostgreSQL URL (`None` when it cannot be parsed, e.g. several
/// hosts: only identical URLs are then the same).
fn postgres_place(url: &str) -> Option<(String, u16, String)> {
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str().filter(|h| !h.is_empty())?;
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    Some((
        host.to_owned(),
        url.port().unwrap_or(5432),
        url.path().trim_start_matches('/').to_owned(),
    ))
}
