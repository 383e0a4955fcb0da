//! The e-mail processor (upstream's `notifications-backend-module-email`), channel `Email`.
//!
//! For each notification that passes its filters (and, for a user's notification, the user's
//! `Email` channel settings), `post_process` mails the user's `spec.profile.email`, or for a
//! broadcast the addresses `broadcastConfig` names. It runs from the durable delivery queue, so
//! a mail server that is down delays mail instead of losing it.

mod address;
mod render;
mod transport;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, Message, MultiPart};
use notifications_common::{EntityRef, Notification, NotificationSendOptions};
use notifications_node::{Catalog, NotificationProcessorFilters, Processor, ProcessorError};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use url::Url;

pub use address::AddressPolicy;
pub use render::{DigestEntry, Rendered, render, render_digest};
pub use transport::Transport;

use crate::config::{BroadcastReceiver, EmailConfig};
use crate::store::Store;

/// The processor's name, and its channel in users' settings.
pub const CHANNEL: &str = "Email";

pub struct EmailProcessor {
    transport: Transport,
    sender: Mailbox,
    reply_to: Option<Mailbox>,
    broadcast: BroadcastReceiver,
    filter: NotificationProcessorFilters,
    policy: AddressPolicy,
    app_base_url: Url,
    catalog: Arc<dyn Catalog>,
    /// Addresses by `user-emails:<ref>` / `user-emails:all`, as upstream's cache keys.
    cache: Option<moka::sync::Cache<String, Arc<Vec<String>>>>,
    throttle: Throttle,
    /// Where follow-up deliveries (one per address) are queued.
    store: Store,
}

/// A follow-up delivery's `user`: `mailto:<address>` (no sender can make a user ref of it: those
/// are resolved entity refs of kind `user`).
const ADDRESS_PREFIX: &str = "mailto:";

impl std::fmt::Debug for EmailProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailProcessor")
            .field("transport", &self.transport)
            .field("sender", &self.sender.to_string())
            .finish_non_exhaustive()
    }
}

impl EmailProcessor {
    /// `delivery_timeout`: how long one delivery (one `post_process`, one mail) may take.
    pub fn new(
        config: EmailConfig,
        app_base_url: Url,
        catalog: Arc<dyn Catalog>,
        store: Store,
        delivery_timeout: Duration,
    ) -> Result<Self, String> {
        let send_timeout = delivery_timeout.mul_f64(0.8).min(Duration::from_secs(60));
        let mailbox = |key: &str, text: &str| {
            text.parse::<Mailbox>().map_err(|e| {
                format!("invalid configuration at notifications.processors.email.{key}: {e}")
            })
        };
        let cache = (!config.cache_ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.cache_ttl)
                .build()
        });
        Ok(Self {
            transport: Transport::new(&config.transport, send_timeout).map_err(|e| {
                format!(
                    "invalid configuration at notifications.processors.email.transportConfig: {e}"
                )
            })?,
            sender: mailbox("sender", &config.sender)?,
            reply_to: config
                .reply_to
                .as_deref()
                .map(|r| mailbox("replyTo", r))
                .transpose()?,
            broadcast: config.broadcast.clone(),
            filter: config.filter.clone(),
            policy: AddressPolicy::from_config(&config),
            app_base_url,
            catalog,
            cache,
            throttle: Throttle::new(config.concurrency_limit as usize, config.throttle_interval),
            store,
        })
    }

    async fn cached(
        &self,
        key: String,
        load: impl Future<Output = Result<Vec<String>, ProcessorError>>,
    ) -> Result<Arc<Vec<String>>, ProcessorError> {
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            return Ok(hit);
        }
        let emails = Arc::new(load.await?);
        if let Some(cache) = &self.cache {
            cache.insert(key, emails.clone());
        }
        Ok(emails)
    }

    async fn user_emails(&self, user: &str) -> Result<Arc<Vec<String>>, ProcessorError> {
        let Ok(entity_ref) = EntityRef::parse(user) else {
            return Ok(Arc::default());
        };
        let key = format!("user-emails:{}", entity_ref.canonical());
        self.cached(key, async {
            let found = self
                .catalog
                .entities_by_refs(std::slice::from_ref(&entity_ref))
                .await
                .map_err(|e| ProcessorError::Transient(e.to_string()))?;
            Ok(found
                .into_iter()
                .flatten()
                .filter_map(|e| e.email.clone())
                .collect())
        })
        .await
    }

    async fn broadcast_emails(&self) -> Result<Arc<Vec<String>>, ProcessorError> {
        match &self.broadcast {
            BroadcastReceiver::None => Ok(Arc::default()),
            BroadcastReceiver::Config(emails) => Ok(Arc::new(emails.clone())),
            BroadcastReceiver::Users => {
                self.cached("user-emails:all".to_owned(), async {
                    let users = self
                        .catalog
                        .users()
                        .await
                        .map_err(|e| ProcessorError::Transient(e.to_string()))?;
                    Ok(users.iter().filter_map(|u| u.email.clone()).collect())
                })
                .await
            }
        }
    }

    fn message(
        &self,
        message_id: String,
        to: &str,
        rendered: &Rendered,
    ) -> Result<Message, String> {
        let to: Mailbox = to.parse().map_err(|e| format!("{to}: {e}"))?;
        let mut builder = Message::builder()
            .message_id(Some(message_id))
            .from(self.sender.clone())
            .to(to)
            .subject(rendered.subject.clone());
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Processor for EmailProcessor {
    fn name(&self) -> &str {
        CHANNEL
    }

    fn filters(&self) -> NotificationProcessorFilters {
        self.filter.clone()
    }

    async fn post_process(
        &self,
        notification: &Notification,
        options: &NotificationSendOptions,
    ) -> Result<(), ProcessorError> {
        // A follow-up of a delivery to several addresses: one mail.
        if let Some(address) = notification
            .user
            .as_deref()
            .and_then(|u| u.strip_prefix(ADDRESS_PREFIX))
        {
            return match self.policy.filter(vec![address.to_owned()]).first() {
                Some(address) => self.mail(notification, address).await,
                None => Ok(()),
            };
        }
        let found = match &notification.user {
            Some(user) => self.user_emails(user).await?,
            None => self.broadcast_emails().await?,
        };
        let emails = self.policy.filter(found.to_vec());
        match emails.as_slice() {
            [] => {
                tracing::debug!(notification = %notification.id, "no e-mail recipients; nothing to send");
                Ok(())
            }
            [address] => self.mail(notification, address).await,
            // Each address becomes a delivery of its own, retried on its own: an outage or a
            // bad address costs nobody else their mail, and nobody gets it twice.
            many => {
                let follow_ups = many
                    .iter()
                    .map(|address| Notification {
                        user: Some(format!("{ADDRESS_PREFIX}{address}")),
                        ..notification.clone()
                    })
                    .collect();
                let options = serde_json::to_value(options)
                    .map_err(|e| ProcessorError::Permanent(e.to_string()))?;
                self.store
                    .queue_follow_ups(follow_ups, options, CHANNEL.to_owned())
                    .await
                    .map_err(|e| ProcessorError::Transient(format!("cannot queue the mails: {e}")))
            }
        }
    }
}

impl EmailProcessor {
    /// Mails `notification` to `address`.
    async fn mail(&self, notification: &Notification, address: &str) -> Result<(), ProcessorError> {
        let rendered = render(notification, &self.app_base_url);
        let id = message_id(notification, address, self.sender.email.domain());
        let message = self
            .message(id, address, &rendered)
            .map_err(|e| ProcessorError::Permanent(format!("mail cannot go to {e}")))?;
        self.throttle.wait().await;
        tracing::debug!(notification = %notification.id, address, "sending e-mail");
        self.transport.send(&message).await
    }

    /// Mails `user` (each of their addresses) one digest of `entries`, the window's deliveries
    /// `window` names (its `Message-ID` is the same on every attempt, as a single mail's).
    /// Without an address, nothing is sent.
    pub async fn mail_digest(
        &self,
        user: &str,
        entries: &[DigestEntry],
        window: &str,
    ) -> Result<(), ProcessorError> {
        let emails = self.policy.filter(self.user_emails(user).await?.to_vec());
        let rendered = render_digest(entries, &self.app_base_url);
        for address in &emails {
            let id = digest_message_id(window, address, self.sender.email.domain());
            let message = self
                .message(id, address, &rendered)
                .map_err(|e| ProcessorError::Permanent(format!("mail cannot go to {e}")))?;
            self.throttle.wait().await;
            tracing::debug!(user, address, entries = entries.len(), "sending a digest");
            self.transport.send(&message).await?;
        }
        Ok(())
    }
}

/// The mail's `Message-ID`: the same for every attempt at one notification's mail to one address
/// (its id, its version, the address), so that a mail made again, after a crash between the SMTP
/// server's acceptance and the delivery's commit, is the same message to the receiver, which
/// can drop the copy (RFC 5322, 3.6.4). A re-sent notification (same scope) is a new version,
/// and a new message.
fn message_id(notification: &Notification, address: &str, domain: &str) -> String {
    let version = notification.updated.unwrap_or(notification.created);
    let tag = tag(address, &version.to_string(), 8);
    format!("<{}.{tag}@{domain}>", notification.id)
}

/// A digest's `Message-ID`: from what its window holds (the deliveries' ids) and the address.
fn digest_message_id(window: &str, address: &str, domain: &str) -> String {
    format!("<digest.{}@{domain}>", tag(address, window, 16))
}

/// `bytes` bytes of SHA-256 over the (case-folded) address and `what`, in hex.
fn tag(address: &str, what: &str, bytes: usize) -> String {
    let digest = Sha256::new()
        .chain_update(address.to_lowercase())
        .chain_update([0])
        .chain_update(what)
        .finalize();
    digest
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Upstream's `p-throttle`: at most `limit` mails start in any `interval`, here shared by all the
/// deliveries of this processor.
struct Throttle {
    limit: usize,
    interval: Duration,
    starts: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl Throttle {
    fn new(limit: usize, interval: Duration) -> Self {
        Self {
            limit: limit.max(1),
            interval,
            starts: tokio::sync::Mutex::new(VecDeque::new()),
        }
    }

    async fn wait(&self) {
        let mut starts = self.starts.lock().await;
        let now = Instant::now();
        while starts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.interval)
        {
            starts.pop_front();
        }
        if starts.len() >= self.limit
            && let Some(oldest) = starts.pop_front()
        {
            tokio::time::sleep_until(oldest + self.interval).await;
        }
        starts.push_back(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use notifications_common::{NotificationRecipients, Timestamp};
    use notifications_node::{CatalogEntity, CatalogError};
    use serde_json::json;

    use super::*;
    use crate::config::EmailTransport;

    /// One user with an address; cannot list users (the trait's default).
    struct OneUser;

    #[async_trait]
    impl Catalog for OneUser {
        async fn entities_by_refs(
            &self,
            refs: &[EntityRef],
        ) -> Result<Vec<Option<Arc<CatalogEntity>>>, CatalogError> {
            Ok(refs
                .iter()
                .map(|r| {
                    (r.name() == "a").then(|| {
                        Arc::new(CatalogEntity {
                            entity_ref: r.clone(),
                            relations: vec![],
                            email: Some("a@example.com".into()),
                            annotations: Default::default(),
                        })
                    })
                })
                .collect())
        }
    }

    /// Follow-ups go to an in-memory database (unused by these tests: one address each).
    fn store() -> Store {
        use crate::db::{Db, PoolOptions, Target};
        let target = Target::Sqlite(":memory:".into());
        let options = PoolOptions::for_target(&target);
        Store::new(Db::open(target, &options).unwrap())
    }

    fn processor(broadcast: BroadcastReceiver) -> EmailProcessor {
        let config = EmailConfig {
            transport: EmailTransport::Stream,
            sender: "Backstage <noreply@example.com>".into(),
            reply_to: None,
            concurrency_limit: 2,
            throttle_interval: Duration::from_millis(1),
            broadcast,
            cache_ttl: Duration::from_secs(60),
            filter: NotificationProcessorFilters::default(),
            allowed_email_domains: None,
            allowlist_email_addresses: None,
            denylist_email_addresses: None,
        };
        EmailProcessor::new(
            config,
            Url::parse("http://localhost").unwrap(),
            Arc::new(OneUser),
            store(),
            Duration::from_secs(30),
        )
        .unwrap()
    }

    fn notification(user: Option<&str>) -> (Notification, NotificationSendOptions) {
        let n: Notification = serde_json::from_value(json!({
            "id": "9b3c7f8e-2a4d-4c1e-8f6a-1d2e3f4a5b6c", "user": user,
            "created": "2026-01-01T00:00:00.000Z", "origin": "o", "payload": {"title": "t"},
        }))
        .unwrap();
        let options = NotificationSendOptions {
            recipients: NotificationRecipients::Broadcast,
            payload: n.payload.clone(),
        };
        (n, options)
    }

    #[tokio::test]
    async fn stream_transport_and_catalog_failures() {
        let p = processor(BroadcastReceiver::Users);
        assert_eq!(p.name(), "Email");
        let (n, o) = notification(Some("user:default/a"));
        p.post_process(&n, &o).await.unwrap();
        let (n, o) = notification(Some("user:default/nobody"));
        p.post_process(&n, &o).await.unwrap();
        let (n, o) = notification(None);
        assert!(matches!(
            p.post_process(&n, &o).await,
            Err(ProcessorError::Transient(e)) if e.contains("cannot list its users")
        ));
        let p = processor(BroadcastReceiver::None);
        p.post_process(&n, &o).await.unwrap();
    }

    #[test]
    fn message_id_names_one_mail_of_one_version() {
        let (n, _) = notification(Some("user:default/a"));
        let id = message_id(&n, "A@example.com", "example.com");
        assert!(
            id.starts_with("<9b3c7f8e-2a4d-4c1e-8f6a-1d2e3f4a5b6c.")
                && id.ends_with("@example.com>"),
            "{id}"
        );
        assert_eq!(id, message_id(&n, "a@EXAMPLE.com", "example.com"));
        assert_ne!(id, message_id(&n, "b@example.com", "example.com"));
        let resent = Notification {
            updated: Some(Timestamp::parse("2026-01-02T00:00:00Z").unwrap()),
            ..n.clone()
        };
        assert_ne!(id, message_id(&resent, "a@example.com", "example.com"));
        let message = processor(BroadcastReceiver::None)
            .message(
                id.clone(),
                "a@example.com",
                &render(&n, &Url::parse("http://x").unwrap()),
            )
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains(&format!("Message-ID: {id}\r\n")), "{raw}");
    }

    #[tokio::test]
    async fn throttle_limits_starts_per_interval() {
        let throttle = Throttle::new(2, Duration::from_millis(50));
        let start = Instant::now();
        for _ in 0..5 {
            throttle.wait().await;
        }
        // Starts at 0, 0, 50, 50, 100 ms.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    }
}
