//! Whether a user's preferences hold a delivery: every channel (e-mail, Slack DMs, webhooks)
//! until their quiet hours end, and e-mail into their digest. Critical notifications pass both
//! unless the operator says otherwise. Deliveries without a user (a broadcast's, one address of
//! several) go as they come.

use std::time::Duration;

use notifications_common::{NotificationSeverity, UserRef};
use notifications_node::ProcessorError;
use time::OffsetDateTime;

use super::DeliveryWorker;
use crate::processors::email;
use crate::schedule::Schedule;
use crate::store::{DeliveryRow, Outcome};

/// A delivery kept this close to its window's end goes to the next window: the window may be
/// claimed before the delivery's keeping commits, and it would then be a digest of its own.
const KEEP_MARGIN: Duration = Duration::from_secs(10);

impl DeliveryWorker {
    /// `None`: deliver now.
    pub(super) async fn hold(&self, row: &DeliveryRow) -> Option<Outcome> {
        let user: UserRef = row.user_ref.as_deref()?.parse().ok()?;
        let critical = row.notification.pointer("/payload/severity")
            == Some(&NotificationSeverity::Critical.as_str().into());
        if critical && self.scheduling.config.critical_passes_through {
            return None;
        }
        let schedule = match self.schedule(&user).await {
            Ok(schedule) => schedule,
            Err(e) => {
                return Some(self.outcome(Err(ProcessorError::Transient(e)), row.attempts));
            }
        };
        let now = self.now();
        if row.channel == email::CHANNEL
            && self.scheduling.mailer.is_some()
            && let Some(due) = schedule.digest_due(now)
        {
            let due = if due - now < KEEP_MARGIN {
                schedule.digest_due(due).unwrap_or(due)
            } else {
                due
            };
            return Some(Outcome::Digest { due });
        }
        Self::quiet(&schedule, now)
    }

    /// The user's schedule, from their stored preferences (the operator's defaults without).
    pub(super) async fn schedule(&self, user: &UserRef) -> Result<Schedule, String> {
        let stored = self
            .store
            .preferences_of(user)
            .await
            .map_err(|e| format!("cannot read the user's preferences: {e}"))?;
        // A document that no longer reads (written by a newer version) is as none.
        let preferences = stored.and_then(|doc| {
            serde_json::from_str(&doc)
                .inspect_err(|e| tracing::warn!(%user, error = %e, "stored preferences do not read; the defaults apply"))
                .ok()
        });
        Ok(Schedule::new(preferences.as_ref(), &self.scheduling.config))
    }

    /// Held until the quiet period `now` falls in ends; `None` outside quiet hours.
    pub(super) fn quiet(schedule: &Schedule, now: OffsetDateTime) -> Option<Outcome> {
        schedule
            .quiet_until(now)
            .map(|until| Outcome::Quiet { until })
    }
}
