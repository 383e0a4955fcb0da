//! Whether a user's preferences hold a delivery: e-mail into their digest, and every channel
//! (e-mail, Slack DMs, webhooks) until their quiet hours end. Deliveries without a user (a
//! broadcast's, one address of several) go as they come.

use notifications_common::{NotificationSeverity, UserRef};
use time::OffsetDateTime;

use super::DeliveryWorker;
use crate::processors::email;
use crate::schedule::Schedule;
use crate::store::{DeliveryRow, Outcome};

impl DeliveryWorker {
    /// `None`: deliver now.
    pub(super) async fn hold(&self, row: &DeliveryRow) -> Option<Outcome> {
        let user: UserRef = row.user_ref.as_deref()?.parse().ok()?;
        let now = self.now();
        let schedule = match self.schedule(&user).await {
            Ok(schedule) => schedule,
            Err(error) => {
                return Some(Outcome::Retry {
                    at: now + self.backoff(row.attempts),
                    error,
                });
            }
        };
        if row.channel == email::CHANNEL
            && self.preferences.mailer.is_some()
            && let Some(due) = schedule.digest_due(now)
        {
            return Some(Outcome::Digest { due });
        }
        let critical = row.notification.pointer("/payload/severity")
            == Some(&NotificationSeverity::Critical.as_str().into());
        if critical && self.preferences.config.critical_in_quiet_hours {
            return None;
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
        Ok(Schedule::new(
            preferences.as_ref(),
            &self.preferences.config,
        ))
    }

    /// Whether `now` is in the user's quiet hours, and until when.
    pub(super) fn quiet(schedule: &Schedule, now: OffsetDateTime) -> Option<Outcome> {
        schedule.quiet_until(now).map(|until| Outcome::Later {
            at: until,
            reason: format!("quiet hours until {}", schedule.local_text(until)),
        })
    }
}
