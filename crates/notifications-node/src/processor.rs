//! Processors: code that runs around the storing of every notification (upstream's
//! `NotificationProcessor`), e.g. to deliver it by e-mail, to Slack or to a webhook.

use async_trait::async_trait;
use notifications_common::{
    Notification, NotificationPayload, NotificationSendOptions, NotificationSeverity,
};

/// Which notifications a processor sees (upstream's `getNotificationFilters`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationProcessorFilters {
    /// Skip notifications less severe than this.
    pub min_severity: Option<NotificationSeverity>,
    /// Skip notifications more severe than this.
    pub max_severity: Option<NotificationSeverity>,
    /// Skip notifications with one of these topics.
    pub excluded_topics: Vec<String>,
    /// When set, skip notifications without one of these topics.
    pub included_topics: Option<Vec<String>>,
}

impl NotificationProcessorFilters {
    /// Whether a notification with `payload` passes (severity defaults to `normal`).
    pub fn accepts(&self, payload: &NotificationPayload) -> bool {
        let severity = payload.severity_or_default();
        let topic = payload.topic.as_deref();
        self.min_severity.is_none_or(|min| severity.at_least(min))
            && self.max_severity.is_none_or(|max| max.at_least(severity))
            && !topic.is_some_and(|t| self.excluded_topics.iter().any(|x| x == t))
            && self
                .included_topics
                .as_ref()
                .is_none_or(|included| topic.is_some_and(|t| included.iter().any(|x| x == t)))
    }
}

/// Why a hook failed. Failures of `process_options` and `pre_process` are logged and skipped;
/// a failed `post_process` (a delivery) is retried later unless it is `Permanent`; `Later`
/// puts a delivery back without using up an attempt.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// Worth trying again: a peer is down, slow, or rate-limiting.
    #[error("{0}")]
    Transient(String),
    /// Will fail the same way every time: a bad address, a refused message.
    #[error("{0}")]
    Permanent(String),
    /// Not now (the processor's own rate limit, say): try again after this long. This does not
    /// count as a failed attempt.
    #[error("{reason}")]
    Later {
        after: std::time::Duration,
        reason: String,
    },
}

/// A processor; its [`name`](Processor::name) is also its channel in users' settings.
///
/// Hooks run in registration order, for the processors whose filters and (for a user's
/// notification) whose channel in the user's settings accept the notification:
/// * `process_options` once per send, before recipients are resolved; it may rewrite the send;
/// * `pre_process` once per recipient user (once for a broadcast) before storing; what it returns
///   is stored;
/// * `post_process` once per recipient (or broadcast) after storing, also for users whose Web
///   channel is off. It runs from a durable queue: a delivery accepted before a crash or an outage
///   happens after it, at least once, with retries; make it idempotent where the peer allows.
#[async_trait]
pub trait Processor: Send + Sync + 'static {
    /// The processor's name and channel id, e.g. `Email`.
    fn name(&self) -> &str;

    fn filters(&self) -> NotificationProcessorFilters {
        NotificationProcessorFilters::default()
    }

    /// False when `post_process` does nothing, so that no delivery is queued for it.
    fn delivers(&self) -> bool {
        true
    }

    async fn process_options(
        &self,
        options: NotificationSendOptions,
    ) -> Result<NotificationSendOptions, ProcessorError> {
        Ok(options)
    }

    async fn pre_process(
        &self,
        notification: Notification,
        _options: &NotificationSendOptions,
    ) -> Result<Notification, ProcessorError> {
        Ok(notification)
    }

    async fn post_process(
        &self,
        _notification: &Notification,
        _options: &NotificationSendOptions,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(severity: Option<NotificationSeverity>, topic: Option<&str>) -> NotificationPayload {
        NotificationPayload {
            title: "t".into(),
            severity,
            topic: topic.map(str::to_owned),
            ..NotificationPayload::default()
        }
    }

    #[test]
    fn severity_bounds() {
        use NotificationSeverity::*;
        let filters = NotificationProcessorFilters {
            min_severity: Some(Normal),
            max_severity: Some(High),
            ..Default::default()
        };
        assert!(!filters.accepts(&payload(Some(Low), None)));
        assert!(
            filters.accepts(&payload(None, None)),
            "no severity is normal"
        );
        assert!(filters.accepts(&payload(Some(High), None)));
        assert!(!filters.accepts(&payload(Some(Critical), None)));
    }

    #[test]
    fn topics() {
        let excluded = NotificationProcessorFilters {
            excluded_topics: vec!["noise".into()],
            ..Default::default()
        };
        assert!(!excluded.accepts(&payload(None, Some("noise"))));
        assert!(
            excluded.accepts(&payload(None, Some("Noise"))),
            "exact match, as upstream"
        );
        assert!(excluded.accepts(&payload(None, None)));
        let included = NotificationProcessorFilters {
            included_topics: Some(vec!["builds".into()]),
            ..Default::default()
        };
        assert!(included.accepts(&payload(None, Some("builds"))));
        assert!(!included.accepts(&payload(None, Some("deploys"))));
        assert!(
            !included.accepts(&payload(None, None)),
            "no topic is not included"
        );
    }
}
