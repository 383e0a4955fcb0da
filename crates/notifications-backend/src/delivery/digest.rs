//! Mailing digests: when a user's digest window closes, their kept e-mail deliveries are taken
//! together and become one mail, of what is still unread and still wanted.
//!
//! One user's closed window is claimed in one statement (two workers never split it), mailed
//! within the delivery timeout (inside the claim's lease), and recorded in one statement. The
//! mail is at least once like any delivery: made again after a crash between the SMTP server's
//! acceptance and the record, it has the same `Message-ID`, named after the window's rows.

use std::collections::{BTreeMap, HashMap};

use notifications_common::{Notification, NotificationId, UserRef};
use notifications_node::{Processor, ProcessorError};

use super::{DeliveryWorker, count_outcome};
use crate::processors::email::{self, DigestEntry, EmailProcessor};
use crate::schedule::Schedule;
use crate::service::settings;
use crate::store::{DeliveryRow, Outcome};

/// Users whose digests one round of the worker mails, one after the other.
const USERS_PER_ROUND: usize = 16;

impl DeliveryWorker {
    /// Mails the digests whose windows have closed; returns how many deliveries they took.
    /// Failures are logged: they do not stop the round's other deliveries.
    pub(super) async fn flush_digests(&self) -> usize {
        let Some(mailer) = &self.scheduling.mailer else {
            return 0;
        };
        let mut taken = 0;
        for _ in 0..USERS_PER_ROUND {
            let claimed = self
                .store
                .claim_digest(self.now(), self.lease(), self.config.max_attempts)
                .await;
            let rows = match claimed {
                Ok(rows) if rows.is_empty() => break,
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take digests from the queue");
                    break;
                }
            };
            taken += rows.len();
            let outcome = self.digest_outcome(mailer, &rows).await;
            count_outcome(email::CHANNEL, &outcome);
            if let Outcome::Failed { error } | Outcome::Retry { error, .. } = &outcome {
                tracing::warn!(user = ?rows.first().and_then(|r| r.user_ref.as_deref()), error, "a digest was not mailed");
            }
            self.record(&rows, outcome).await;
        }
        taken
    }

    /// Mails one user's closed window (`rows`, all theirs), or holds it on in their quiet hours.
    async fn digest_outcome(&self, mailer: &EmailProcessor, rows: &[DeliveryRow]) -> Outcome {
        let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(1);
        let Some(user) = rows
            .first()
            .and_then(|r| r.user_ref.as_deref())
            .and_then(|u| u.parse::<UserRef>().ok())
        else {
            return Outcome::Failed {
                error: "a digest delivery without a user".into(),
            };
        };
        let schedule = match self.schedule(&user).await {
            Ok(schedule) => schedule,
            Err(e) => return self.outcome(Err(ProcessorError::Transient(e)), attempts),
        };
        if let Some(held) = Self::quiet(&schedule, self.now()) {
            return held;
        }
        let entries = match self.entries(mailer, &user, rows, &schedule).await {
            Ok(entries) => entries,
            Err(e) => return self.outcome(Err(ProcessorError::Transient(e)), attempts),
        };
        if entries.is_empty() {
            tracing::debug!(%user, "nothing left of the digest to mail");
            return Outcome::Delivered;
        }
        let window: String = rows.iter().map(|r| r.id.to_string()).collect();
        let result = self
            .guarded(mailer.mail_digest(user.as_str(), &entries, &window))
            .await;
        self.outcome(result, attempts)
    }

    /// What the digest lists: each notification once, as it is now (a re-send's latest
    /// content), oldest first; without what the user has read, and what their settings or the
    /// processor's filters now leave out.
    async fn entries(
        &self,
        mailer: &EmailProcessor,
        user: &UserRef,
        rows: &[DeliveryRow],
        schedule: &Schedule,
    ) -> Result<Vec<DigestEntry>, String> {
        let mut kept: BTreeMap<NotificationId, Notification> = BTreeMap::new();
        for row in rows {
            // Rows of a notification whose Web channel was off hold its only copy.
            match serde_json::from_value::<Notification>(row.notification.clone()) {
                Ok(n) => {
                    kept.insert(n.id, n);
                }
                Err(e) => {
                    tracing::warn!(id = %row.id, error = %e, "an unreadable notification left out of a digest")
                }
            }
        }
        let stored: HashMap<NotificationId, Notification> = self
            .store
            .get_many(user, kept.keys().copied().collect())
            .await
            .map_err(|e| format!("cannot read the digest's notifications: {e}"))?
            .into_iter()
            .map(|n| (n.id, n))
            .collect();
        let settings_rows = self
            .store
            .settings_of(user)
            .await
            .map_err(|e| format!("cannot read the user's settings: {e}"))?;
        let filters = mailer.filters();
        let mut entries: Vec<DigestEntry> = kept
            .into_values()
            .map(|n| stored.get(&n.id).cloned().unwrap_or(n))
            .filter(|n| n.read.is_none())
            .filter(|n| filters.accepts(&n.payload))
            .filter(|n| {
                settings::is_enabled(
                    email::CHANNEL,
                    &self.scheduling.default_settings,
                    &settings_rows,
                    &n.origin,
                    n.payload.topic.as_deref(),
                )
            })
            .map(|n| DigestEntry {
                local_time: schedule.local_text(n.updated.unwrap_or(n.created).as_datetime()),
                notification: n,
            })
            .collect();
        entries.sort_by_key(|e| e.notification.updated.unwrap_or(e.notification.created));
        Ok(entries)
    }
}
