//! LISTEN on PostgreSQL: a dedicated connection on its own thread that passes each NOTIFY of a
//! channel on, and reconnects with backoff when the database goes away (saying so in the log).
//!
//! libpq's `PQconsumeInput` reads without blocking, so the thread checks for notifications every
//! [`TICK`]: wake-ups arrive within that, at the cost of a system call per tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use diesel::pg::PgConnection;

const TICK: Duration = Duration::from_millis(50);
/// How often an idle connection is checked (a silently dead network is found this way).
const KEEPALIVE: Duration = Duration::from_secs(30);
/// Short, so that after an outage the listener is back within a second of the database (what was
/// notified meanwhile is caught up by the callers); one attempt a second costs nothing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Stops listening when dropped.
pub struct Listener {
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Calls `on_notify` with the payload of every NOTIFY on `channel`, and with `None` after each
/// (re)connection, since notifications sent while not listening are lost.
pub fn listen(
    url: String,
    channel: &'static str,
    on_notify: impl Fn(Option<String>) + Send + 'static,
) -> std::io::Result<Listener> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::Builder::new()
        .name(format!("listen-{channel}"))
        .spawn(move || {
            let mut backoff = Duration::from_millis(100);
            let mut lost = false;
            while !stopped.load(Ordering::Relaxed) {
                let mut conn = match connect(&url, channel) {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(channel, error = %e, retry_in = ?backoff, "cannot LISTEN");
                        lost = true;
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                };
                if lost {
                    tracing::info!(channel, "listening again");
                }
                backoff = Duration::from_millis(100);
                on_notify(None);
                let error = receive(&mut conn, &stopped, &on_notify);
                if let Some(e) = error {
                    tracing::warn!(channel, error = %e, "lost the LISTEN connection; reconnecting");
                    lost = true;
                }
            }
        })?;
    Ok(Listener { stop })
}

fn connect(url: &str, channel: &str) -> diesel::QueryResult<PgConnection> {
    let mut conn = super::connection::establish_postgres(url)
        .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
    diesel::sql_query(format!("LISTEN {channel}")).execute(&mut conn)?;
    Ok(conn)
}

/// Passes notifications on until stopped (`None`) or the connection fails (the error).
fn receive(
    conn: &mut PgConnection,
    stop: &AtomicBool,
    on_notify: &impl Fn(Option<String>),
) -> Option<diesel::result::Error> {
    let mut checked = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for notification in conn.notifications_iter() {
            match notification {
                Ok(n) => on_notify(Some(n.payload)),
                Err(e) => return Some(e),
            }
        }
        if checked.elapsed() > KEEPALIVE {
            if let Err(e) = diesel::sql_query("SELECT 1").execute(conn) {
                return Some(e);
            }
            checked = Instant::now();
        }
        std::thread::sleep(TICK);
    }
    None
}
