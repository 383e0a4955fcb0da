//! The retention cleaner: every midnight (UTC), delete notifications without activity for the
//! configured retention period (`notifications.retention`, one year by default), and the
//! idempotency keys of sends older than a day.

use time::{Duration, OffsetDateTime, Time};
use tokio::task::JoinHandle;

use crate::config::Retention;
use crate::store::Store;

/// Starts the daily task, or logs that retention is disabled.
pub fn spawn(store: Store, retention: Option<Retention>) -> Option<JoinHandle<()>> {
    let Some(retention) = retention else {
        tracing::info!("Notification retention is disabled, skipping notification cleaner task");
        return None;
    };
    Some(tokio::spawn(async move {
        loop {
            let now = OffsetDateTime::now_utc();
            let wait = (next_midnight(now) - now).unsigned_abs();
            tokio::time::sleep(wait).await;
            // Errors are logged inside; tomorrow is another run.
            let _ = run_once(&store, &retention).await;
        }
    }))
}

/// One cleaning pass; returns how many notifications (user and broadcast) were deleted.
pub async fn run_once(store: &Store, retention: &Retention) -> Result<u64, crate::db::DbError> {
    tracing::info!(
        task = "notification-cleaner",
        "Starting notification cleaner task"
    );
    let now = OffsetDateTime::now_utc();
    // Idempotency keys live a day whatever the retention; a failure here is only logged (an
    // expired key is ignored anyway, and freed when it is used again).
    match store.delete_expired_idempotency_keys(now).await {
        Ok(deleted) => tracing::debug!(
            task = "notification-cleaner",
            "deleted {deleted} expired idempotency keys"
        ),
        Err(e) => tracing::warn!(
            task = "notification-cleaner",
            "deleting expired idempotency keys failed: {e}"
        ),
    }
    match store.delete_inactive_since(retention.cutoff(now)).await {
        Ok(deleted) => {
            tracing::info!(
                task = "notification-cleaner",
                "Notification cleaner task completed successfully, deleted {deleted} notifications"
            );
            Ok(deleted)
        }
        Err(e) => {
            tracing::error!(
                task = "notification-cleaner",
                "Notification cleaner task failed: {e}"
            );
            Err(e)
        }
    }
}

fn next_midnight(now: OffsetDateTime) -> OffsetDateTime {
    (now + Duration::days(1)).replace_time(Time::MIDNIGHT)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn runs_at_the_next_utc_midnight() {
        assert_eq!(
            next_midnight(datetime!(2025-03-31 23:59:59 UTC)),
            datetime!(2025-04-01 00:00 UTC)
        );
        assert_eq!(
            next_midnight(datetime!(2025-04-01 00:00 UTC)),
            datetime!(2025-04-02 00:00 UTC)
        );
    }
}
