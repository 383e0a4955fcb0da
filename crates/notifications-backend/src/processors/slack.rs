//! The Slack processor (contract section 6.2): channel messages for the non-user entities a send
//! names, direct messages to users it names explicitly, broadcasts to routed channels, and
//! scope re-sends that edit the earlier message.
//!
//! Differences from upstream, for reliability:
//! * every Slack call runs from the durable delivery queue. `process_options` does not post the
//!   channel messages itself (upstream: fire-and-forget before storing): it resolves each
//!   entity's channel and queues a delivery for it (a notification whose `user` is the entity's
//!   ref and whose `payload.metadata.slackChannel` is the channel), which `post_process` then
//!   posts with the queue's retries. Queueing needs the database; if that fails the channel
//!   message is skipped and logged, and the send goes on;
//! * Slack's answers are sorted: HTTP 429, 5xx, network errors and `ok:false` errors such as
//!   `ratelimited` or `internal_error` are transient (retried); other `ok:false` errors
//!   (`channel_not_found`, `invalid_auth`, `not_in_channel`...) are permanent (failed at once).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use notifications_common::{
    EntityRef, Notification, NotificationId, NotificationPayload, NotificationRecipients,
    NotificationSendOptions, Timestamp,
};
use notifications_node::{Catalog, CatalogEntity, Processor, ProcessorError};
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

use crate::config::{BroadcastRoute, SlackConfig};
use crate::service::link::resolve_link;
use crate::store::{SlackMessage, Store};

/// The annotation naming an entity's Slack destination (a channel or user id, or a name).
pub const ANNOTATION_SLACK_BOT_NOTIFY: &str = "slack.com/bot-notify";
/// Where a channel message's target travels in its queued delivery (and upstream's per-send
/// override of an entity's channel).
const METADATA_CHANNEL: &str = "slackChannel";
/// `ok:false` errors worth retrying.
const TRANSIENT_ERRORS: [&str; 6] = [
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

pub struct SlackProcessor {
    config: SlackConfig,
    http: reqwest::Client,
    catalog: Arc<dyn Catalog>,
    store: Store,
    app_base_url: Url,
    throttle: Throttle,
    /// The longest a delivery waits for the throttle before going back to the queue.
    max_wait: Duration,
}

impl SlackProcessor {
    pub fn new(
        config: SlackConfig,
        catalog: Arc<dyn Catalog>,
        store: Store,
        app_base_url: Url,
        delivery_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = crate::outbound_http::client_builder()
            .timeout(Duration::from_secs(20))
            .build()?;
        let throttle = Throttle::new(config.concurrency_limit, config.throttle_interval);
        Ok(Self {
            config,
            http,
            catalog,
            store,
            app_base_url,
            throttle,
            max_wait: delivery_timeout / 2,
        })
    }

    /// One Web API call; the answer when Slack says `ok`.
    async fn call(
        &self,
        method: &str,
        body: Option<&Value>,
        query: &[(&str, &str)],
    ) -> Result<Value, ProcessorError> {
        let mut url = self
            .config
            .api_url
            .join(method)
            .map_err(|e| ProcessorError::Permanent(format!("bad Slack API URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let request = match body {
            Some(body) => self.http.post(url).json(body),
            None => self.http.get(url),
        };
        let response = request
            .bearer_auth(self.config.token.expose())
            .send()
            .await
            .map_err(|e| {
                ProcessorError::Transient(format!("Slack {method}: {}", e.without_url()))
            })?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(ProcessorError::Transient(format!(
                "Slack {method}: rate limited (HTTP 429)"
            )));
        }
        if status.is_server_error() {
            return Err(ProcessorError::Transient(format!(
                "Slack {method}: HTTP {status}"
            )));
        }
        let answer: Value = response.json().await.map_err(|e| {
            if status.is_success() {
                ProcessorError::Transient(format!(
                    "Slack {method}: unreadable answer: {}",
                    e.without_url()
                ))
            } else {
                ProcessorError::Permanent(format!("Slack {method}: HTTP {status}"))
            }
        })?;
        if answer.get("ok") == Some(&Value::Bool(true)) {
            return Ok(answer);
        }
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .to_owned();
        let message = format!("Slack {method}: {error}");
        if TRANSIENT_ERRORS.contains(&error.as_str()) {
            Err(ProcessorError::Transient(message))
        } else {
            Err(ProcessorError::Permanent(message))
        }
    }

    async fn entity(&self, entity_ref: &EntityRef) -> Result<Arc<CatalogEntity>, ProcessorError> {
        let found = self
            .catalog
            .entities_by_refs(std::slice::from_ref(entity_ref))
            .await
            .map_err(|e| ProcessorError::Transient(format!("catalog: {e}")))?;
        found
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| ProcessorError::Permanent(format!("Entity not found: {entity_ref}")))
    }

    /// Upstream's `getSlackNotificationTarget`: the entity's annotation, else (users) the Slack
    /// user with the entity's e-mail. `None`: the entity has no Slack destination.
    async fn target(&self, entity_ref: &EntityRef) -> Result<Option<String>, ProcessorError> {
        let entity = self.entity(entity_ref).await?;
        if let Some(id) = entity
            .annotations
            .get(ANNOTATION_SLACK_BOT_NOTIFY)
            .filter(|s| !s.is_empty())
        {
            return Ok(Some(id.clone()));
        }
        if !entity_ref.is_kind("user") {
            return Ok(None);
        }
        let Some(email) = entity.email.as_deref() else {
            return Ok(None);
        };
        self.throttle.wait(self.max_wait).await?;
        match self
            .call("users.lookupByEmail", None, &[("email", email)])
            .await
        {
            Ok(answer) => Ok(answer
                .pointer("/user/id")
                .and_then(Value::as_str)
                .map(str::to_owned)),
            Err(ProcessorError::Permanent(e)) => {
                tracing::warn!(user = %entity_ref, error = %e, "no Slack user found by e-mail");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `<@user:ns/name>` mentions rewritten to `<@SLACKID>`; unresolvable ones stay.
    async fn replace_mentions(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut cache: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut rest = text;
        while let Some(start) = rest.find("<@") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('>') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let inner = &after[..end];
            // `get`, not indexing: byte 5 need not be a character boundary.
            let is_user = inner.len() > 5
                && inner
                    .get(..5)
                    .is_some_and(|p| p.eq_ignore_ascii_case("user:"));
            let replaced = if is_user {
                let key = inner.to_lowercase();
                if !cache.contains_key(&key) {
                    let id = match EntityRef::parse(&key) {
                        Ok(r) => self.target(&r).await.unwrap_or_else(|e| {
                            tracing::warn!(user = key, error = %e, "cannot resolve a Slack mention");
                            None
                        }),
                        Err(_) => None,
                    };
                    cache.insert(key.clone(), id);
                }
                cache
                    .get(&key)
                    .and_then(Option::as_ref)
                    .map(|id| format!("<@{id}>"))
            } else {
                None
            };
            match replaced {
                Some(r) => out.push_str(&r),
                None => {
                    out.push_str("<@");
                    out.push_str(inner);
                    out.push('>');
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    async fn message(&self, channel: &str, payload: &NotificationPayload) -> Value {
        let description = match payload.description.as_deref() {
            Some(d) if !d.is_empty() => self.replace_mentions(d).await,
            _ => "No description provided".to_owned(),
        };
        let link = payload
            .link
            .as_deref()
            .filter(|l| !l.is_empty())
            .and_then(|l| resolve_link(l, &self.app_base_url).ok());
        chat_message(
            channel,
            payload,
            &description,
            link.as_ref(),
            self.config.username.as_deref(),
        )
    }

    /// Posts (or, for a scope re-send with a recorded message, edits) one message.
    async fn send(
        &self,
        channel: &str,
        payload: &NotificationPayload,
        scope: Option<(&str, &str, bool)>,
    ) -> Result<(), ProcessorError> {
        let mut message = self.message(channel, payload).await;
        if let Some((origin, scope, true)) = scope {
            let earlier = self.store.slack_message(origin, scope, channel).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot look up the earlier Slack message; posting anew");
                None
            });
            if let Some(earlier) = earlier {
                if let Some(m) = message.as_object_mut() {
                    m.insert("channel".into(), json!(earlier.message_channel));
                    m.insert("ts".into(), json!(earlier.ts));
                    m.remove("username");
                }
                self.throttle.wait(self.max_wait).await?;
                self.call("chat.update", Some(&message), &[]).await?;
                return Ok(());
            }
        }
        self.throttle.wait(self.max_wait).await?;
        let answer = self.call("chat.postMessage", Some(&message), &[]).await?;
        let field = |name: &str| answer.get(name).and_then(Value::as_str);
        if let (Some((origin, scope, _)), Some(ts)) = (scope, field("ts")) {
            let posted = SlackMessage {
                message_channel: field("channel").unwrap_or(channel).to_owned(),
                ts: ts.to_owned(),
            };
            if let Err(e) = self
                .store
                .save_slack_message(origin, scope, channel, posted)
                .await
            {
                // Posted: failing now would post it again. A later re-send posts anew instead
                // of editing.
                tracing::warn!(error = %e, "cannot record the Slack message for scope updates");
            }
        }
        Ok(())
    }

    /// The channels of the first matching route: origin and topic, origin only, topic only,
    /// else `broadcastChannels`.
    fn broadcast_channels(&self, origin: &str, topic: Option<&str>) -> &[String] {
        broadcast_channels(
            &self.config.broadcast_routes,
            &self.config.broadcast_channels,
            origin,
            topic,
        )
    }
}

/// Upstream's `getBroadcastDestinations`.
pub fn broadcast_channels<'a>(
    routes: &'a [BroadcastRoute],
    fallback: &'a [String],
    origin: &str,
    topic: Option<&str>,
) -> &'a [String] {
    let found = routes
        .iter()
        .find(|r| {
            r.origin.as_deref() == Some(origin) && r.topic.is_some() && r.topic.as_deref() == topic
        })
        .or_else(|| {
            routes
                .iter()
                .find(|r| r.topic.is_none() && r.origin.as_deref() == Some(origin))
        })
        .or_else(|| {
            routes
                .iter()
                .find(|r| r.origin.is_none() && r.topic.is_some() && r.topic.as_deref() == topic)
        });
    found.map_or(fallback, |r| &r.channels)
}

/// `chat.postMessage` arguments as upstream's default block-kit renderer makes them.
pub fn chat_message(
    channel: &str,
    payload: &NotificationPayload,
    description: &str,
    link: Option<&Url>,
    username: Option<&str>,
) -> Value {
    let mut button = json!({
        "type": "button",
        "text": {"type": "plain_text", "text": "View More"},
        "action_id": "button-action",
    });
    if let (Some(link), Some(button)) = (link, button.as_object_mut()) {
        button.insert("url".into(), json!(link.as_str()));
    }
    let severity = payload.severity_or_default().as_str();
    let color = match severity {
        "critical" => "#FF0000",
        "high" => "#FFA500",
        _ => "#00A699",
    };
    let mut message = json!({
        "channel": channel,
        "text": payload.title,
        "attachments": [{
            "color": color,
            "fallback": payload.title,
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": description},
                    "accessory": button,
                },
                {
                    "type": "context",
                    "elements": [
                        {"type": "plain_text", "text": format!("Severity: {severity}"), "emoji": true},
                        {"type": "plain_text", "text": format!("Topic: {}", payload.topic.as_deref().unwrap_or("N/A")), "emoji": true},
                    ],
                },
            ],
        }],
    });
    if let (Some(username), Some(m)) = (username, message.as_object_mut()) {
        m.insert("username".into(), json!(username));
    }
    message
}

fn explicit_refs(options: &NotificationSendOptions) -> Vec<EntityRef> {
    match &options.recipients {
        NotificationRecipients::Entity { entity_ref, .. } => entity_ref
            .as_slice()
            .iter()
            .filter_map(|r| EntityRef::parse(r).ok())
            .collect(),
        NotificationRecipients::Broadcast => Vec::new(),
    }
}

#[async_trait]
impl Processor for SlackProcessor {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// Queues a channel message for each non-user entity the send names (see the module docs).
    async fn process_options(
        &self,
        options: NotificationSendOptions,
    ) -> Result<NotificationSendOptions, ProcessorError> {
        let override_channel = options
            .payload
            .metadata
            .as_ref()
            .and_then(|m| m.get(METADATA_CHANNEL))
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        for entity_ref in explicit_refs(&options) {
            if entity_ref.is_kind("user") {
                continue; // users get direct messages from post_process
            }
            let channel = match &override_channel {
                Some(c) => c.clone(),
                None => match self.target(&entity_ref).await {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        tracing::debug!(entity = %entity_ref, "no Slack channel for the entity");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(entity = %entity_ref, error = %e, "cannot find the entity's Slack channel");
                        continue;
                    }
                },
            };
            let mut payload = options.payload.clone();
            payload
                .metadata
                .get_or_insert_with(Default::default)
                .insert(METADATA_CHANNEL.to_owned(), json!(channel));
            let delivery = Notification {
                id: NotificationId(uuid::Uuid::now_v7()),
                user: Some(entity_ref.canonical()),
                created: Timestamp::from(time::OffsetDateTime::now_utc()),
                saved: None,
                read: None,
                updated: None,
                origin: String::new(),
                payload,
            };
            let json = serde_json::to_value(&options).unwrap_or(Value::Null);
            if let Err(e) = self
                .store
                .queue_follow_ups(vec![delivery], json, self.config.name.clone())
                .await
            {
                tracing::error!(entity = %entity_ref, channel, error = %e, "cannot queue the Slack channel message; skipped");
            }
        }
        Ok(options)
    }

    async fn post_process(
        &self,
        notification: &Notification,
        options: &NotificationSendOptions,
    ) -> Result<(), ProcessorError> {
        let scope = notification
            .payload
            .scope
            .as_deref()
            .filter(|s| !s.is_empty());
        let scope = scope.map(|s| {
            (
                notification.origin.as_str(),
                s,
                notification.updated.is_some(),
            )
        });
        let Some(user) = &notification.user else {
            let channels = self
                .broadcast_channels(&notification.origin, notification.payload.topic.as_deref());
            let mut failure = None;
            for channel in channels {
                if let Err(e) = self.send(channel, &notification.payload, scope).await {
                    failure = Some(e);
                }
            }
            return failure.map_or(Ok(()), Err);
        };
        let recipient =
            EntityRef::parse(user).map_err(|e| ProcessorError::Permanent(e.to_string()))?;
        if !recipient.is_kind("user") {
            // A channel message queued by process_options.
            let channel = notification
                .payload
                .metadata
                .as_ref()
                .and_then(|m| m.get(METADATA_CHANNEL))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ProcessorError::Permanent("no Slack channel in the delivery".into())
                })?;
            return self.send(channel, &notification.payload, None).await;
        }
        let canonical = recipient.canonical();
        if !explicit_refs(options)
            .iter()
            .any(|r| r.is_kind("user") && r.canonical() == canonical)
        {
            return Ok(()); // reached through a group or an owner: no direct message
        }
        let Some(target) = self.target(&recipient).await? else {
            tracing::warn!(user = %recipient, "no slack.com/bot-notify annotation nor Slack user by e-mail");
            return Ok(());
        };
        // The content as stored: what other processors' pre_process made of it.
        self.send(&target, &notification.payload, scope).await
    }
}

/// One processor per entry of `notifications.processors.slack`.
pub fn from_config(
    config: &crate::config::Config,
    catalog: &Arc<dyn Catalog>,
    store: &Store,
) -> Result<Vec<Arc<dyn Processor>>, super::SetupError> {
    use super::SetupError;
    let configs = crate::config::slack_configs(&config.notifications.processors)
        .map_err(|e| SetupError(e.to_string()))?;
    configs
        .into_iter()
        .map(|c| {
            let name = c.name.clone();
            let processor = SlackProcessor::new(
                c,
                catalog.clone(),
                store.clone(),
                config.app.base_url.clone(),
                config.notifications.delivery.timeout,
            )
            .map_err(|e| SetupError(format!("{name}: cannot set up the HTTP client: {e}")))?;
            tracing::info!(processor = name, "Slack processor configured");
            Ok(Arc::new(processor) as Arc<dyn Processor>)
        })
        .collect()
}

/// At most `limit` calls per `interval` (upstream's p-throttle), per processor and instance.
struct Throttle {
    limit: usize,
    interval: Duration,
    starts: Mutex<VecDeque<Instant>>,
}

impl Throttle {
    fn new(limit: u32, interval: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            interval,
            starts: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits for a slot; a slot further away than `max_wait` puts the delivery back until then
    /// (without using up an attempt).
    async fn wait(&self, max_wait: Duration) -> Result<(), ProcessorError> {
        let slot = {
            let mut starts = self.starts.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            while starts.front().is_some_and(|t| *t + self.interval <= now) {
                starts.pop_front();
            }
            // The start `limit` places back frees the next slot, one interval after it.
            let slot = match starts
                .len()
                .checked_sub(self.limit)
                .and_then(|i| starts.get(i))
            {
                Some(start) => (*start + self.interval).max(now),
                None => now,
            };
            if slot - now > max_wait {
                return Err(ProcessorError::Later {
                    after: slot - now,
                    reason: format!(
                        "throttled: {} Slack calls per {:?} reached",
                        self.limit, self.interval
                    ),
                });
            }
            let at = starts.partition_point(|t| *t <= slot);
            starts.insert(at, slot);
            slot
        };
        tokio::time::sleep_until(slot).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(origin: Option<&str>, topic: Option<&str>, channel: &str) -> BroadcastRoute {
        BroadcastRoute {
            origin: origin.map(str::to_owned),
            topic: topic.map(str::to_owned),
            channels: vec![channel.to_owned()],
        }
    }

    #[test]
    fn route_precedence() {
        let routes = [
            route(None, Some("t"), "topic"),
            route(Some("o"), None, "origin"),
            route(Some("o"), Some("t"), "both"),
        ];
        let fallback = ["default".to_owned()];
        let pick =
            |o: &str, t: Option<&str>| broadcast_channels(&routes, &fallback, o, t)[0].clone();
        assert_eq!(pick("o", Some("t")), "both");
        assert_eq!(pick("o", Some("x")), "origin");
        assert_eq!(pick("o", None), "origin");
        assert_eq!(pick("p", Some("t")), "topic");
        assert_eq!(pick("p", None), "default");
    }

    #[test]
    fn message_shape() {
        let payload = NotificationPayload {
            title: "Build failed".into(),
            severity: Some(notifications_common::NotificationSeverity::Critical),
            ..Default::default()
        };
        let link = Url::parse("http://localhost/x").unwrap();
        let m = chat_message("C1", &payload, "No description provided", Some(&link), None);
        assert_eq!(m["text"], "Build failed");
        assert_eq!(m["attachments"][0]["color"], "#FF0000");
        assert_eq!(
            m["attachments"][0]["blocks"][0]["accessory"]["url"],
            "http://localhost/x"
        );
        assert_eq!(
            m["attachments"][0]["blocks"][1]["elements"][0]["text"],
            "Severity: critical"
        );
        assert_eq!(
            m["attachments"][0]["blocks"][1]["elements"][1]["text"],
            "Topic: N/A"
        );
        assert!(m.get("username").is_none());
    }

    #[tokio::test]
    async fn throttle_spaces_calls() {
        let t = Throttle::new(2, Duration::from_millis(200));
        let start = Instant::now();
        t.wait(Duration::from_secs(5)).await.unwrap();
        t.wait(Duration::from_secs(5)).await.unwrap();
        assert!(
            t.wait(Duration::from_millis(50)).await.is_err(),
            "too far away"
        );
        t.wait(Duration::from_secs(5)).await.unwrap();
        assert!(Instant::now() - start >= Duration::from_millis(200));
    }
}
