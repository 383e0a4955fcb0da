use notifications_common::{Notification, NotificationSendOptions};
use reqwest::Method;

use super::transport::{Call, Transport};
use super::{ClientBuilder, ClientError};

/// Sends notifications, as upstream's node `NotificationService`: `POST <base URL>` (the
/// plugin's bare mount path, e.g. `http://host/api/notifications`) with the options as JSON.
///
/// Beyond upstream, every send carries an `Idempotency-Key` (the same on each retry), so a
/// retried send is made once, and the answer is returned: the notifications created or
/// updated. Cheap to clone; clones share one connection pool.
///
/// ```no_run
/// # async fn run() -> Result<(), notifications_node::ClientError> {
/// use notifications_node::NotificationService;
/// use notifications_node::common::{NotificationPayload, NotificationRecipients, NotificationSendOptions};
///
/// let notifications = NotificationService::builder("http://localhost:7007/api/notifications")
///     .token("<a service token: `notifications-backend token --service my-service`>")
///     .build()?;
/// notifications
///     .send(NotificationSendOptions {
///         recipients: NotificationRecipients::entities(["user:default/jane"]),
///         payload: NotificationPayload { title: "Build 42 failed".into(), ..Default::default() },
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NotificationService {
    transport: Transport,
}

impl NotificationService {
    /// `base_url`: where the notifications plugin is mounted, e.g.
    /// `http://localhost:7007/api/notifications`.
    pub fn builder(base_url: &str) -> ClientBuilder<Self> {
        ClientBuilder::new(base_url)
    }

    /// Sends once, under a fresh idempotency key.
    pub async fn send(
        &self,
        options: NotificationSendOptions,
    ) -> Result<Vec<Notification>, ClientError> {
        let key = uuid::Uuid::new_v4().to_string();
        self.send_with_idempotency_key(options, &key).await
    }

    /// Sends under `key`: a send repeated with the same key within 24 hours (a script run
    /// again, say) gets the first answer and notifies nobody again. The same key with other
    /// options is refused (a 422 `IdempotencyKeyReusedError`).
    pub async fn send_with_idempotency_key(
        &self,
        options: NotificationSendOptions,
        key: &str,
    ) -> Result<Vec<Notification>, ClientError> {
        let body = serde_json::to_vec(&options)
            .map_err(|e| ClientError::Config(format!("the send options as JSON: {e}")))?;
        self.transport
            .call(Call {
                method: Method::POST,
                url: self.transport.base(),
                body: Some(body),
                idempotency_key: Some(key),
            })
            .await
    }
}

impl ClientBuilder<NotificationService> {
    pub fn build(self) -> Result<NotificationService, ClientError> {
        Ok(NotificationService {
            transport: self.transport()?,
        })
    }
}

impl std::fmt::Debug for NotificationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationService")
            .field("base_url", &self.transport.base().as_str())
            .finish_non_exhaustive()
    }
}
