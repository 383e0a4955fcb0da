//! The webhook processor (beyond upstream): POSTs every delivery to a configured URL as JSON,
//! signed with HMAC-SHA256 so that receivers can check where it comes from and refuse replays.
//!
//! The request:
//! * body: `{"notification": <the notification as stored>, "recipients": <the send's recipients>}`;
//! * `Content-Type: application/json`;
//! * `X-Notifications-Delivery: <notification id>:<channel>[:<updated>]`, the same on every retry
//!   of the delivery, for receivers to drop duplicates (delivery is at least once); a scope
//!   re-send, which updates the notification, is a new delivery with its update time added;
//! * `X-Notifications-Timestamp: <unix seconds>` of this attempt;
//! * `X-Notifications-Signature: sha256=<lower-case hex HMAC-SHA256 of
//!   "<timestamp>.<delivery>\n<body>">` keyed with the configured secret: the delivery id is
//!   signed too, so that a captured request cannot be replayed under another id past a
//!   receiver's de-duplication. A header value cannot hold a line feed, so the parts cannot
//!   shift into one another.
//!
//! 2xx is delivered; 408, 429, 5xx, connection errors and timeouts are retried; other statuses
//! (other 4xx, and redirects, which are not followed) fail for good.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use notifications_common::{Notification, NotificationSendOptions};
use notifications_node::{NotificationProcessorFilters, Processor, ProcessorError};
use reqwest::StatusCode;
use serde_json::json;
use sha2::Sha256;

use crate::config::WebhookConfig;

pub const DELIVERY_HEADER: &str = "X-Notifications-Delivery";

/// One per delivery: an update by scope keeps the notification's id, so its time tells it apart.
fn delivery_id(notification: &notifications_common::Notification, channel: &str) -> String {
    match notification.updated {
        Some(updated) => format!("{}:{channel}:{updated}", notification.id),
        None => format!("{}:{channel}", notification.id),
    }
}
pub const TIMESTAMP_HEADER: &str = "X-Notifications-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Notifications-Signature";

/// At most this much of a refusing answer's body is quoted in the delivery's error.
const QUOTE_LIMIT: usize = 200;

pub struct WebhookProcessor {
    config: WebhookConfig,
    client: reqwest::Client,
}

impl WebhookProcessor {
    pub fn new(config: WebhookConfig) -> Result<Self, reqwest::Error> {
        let client = crate::outbound_http::client_builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirected POST may lose its body or change method; the URL should be exact.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("notifications-backend/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { config, client })
    }
}

/// The value of the signature header: `sha256=` and the hex HMAC-SHA256 of
/// `"<timestamp>.<delivery>\n<body>"` keyed with `secret`.
#[expect(clippy::expect_used, reason = "HMAC takes keys of any length")]
pub fn signature(secret: &[u8], timestamp: u64, delivery: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(delivery.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[async_trait]
impl Processor for WebhookProcessor {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn filters(&self) -> NotificationProcessorFilters {
        self.config.filters.clone()
    }

    async fn post_process(
        &self,
        notification: &Notification,
        options: &NotificationSendOptions,
    ) -> Result<(), ProcessorError> {
        let body = serde_json::to_vec(&json!({
            "notification": notification,
            "recipients": options.recipients,
        }))
        .map_err(|e| ProcessorError::Permanent(format!("cannot encode the notification: {e}")))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let delivery = delivery_id(notification, &self.config.name);
        let mut request = self.client.post(self.config.url.clone());
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        let request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                signature(self.config.secret.as_bytes(), timestamp, &delivery, &body),
            )
            .header(DELIVERY_HEADER, delivery)
            .body(body);
        // Errors never carry the URL: it may hold a token (many hook URLs do).
        let response = request.send().await.map_err(|e| {
            let e = e.without_url();
            if e.is_timeout() {
                ProcessorError::Transient(format!("no answer within {:?}", self.config.timeout))
            } else {
                ProcessorError::Transient(format!("cannot reach the webhook: {}", chain(&e)))
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let quote = quote(response).await;
        let message = format!("the webhook answered {status}{quote}");
        if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            Err(ProcessorError::Transient(message))
        } else {
            Err(ProcessorError::Permanent(message))
        }
    }
}

/// An error with its causes (reqwest's own message is often just "error sending request").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `": <the start of the body>"`, or nothing when it is empty or unreadable.
async fn quote(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < QUOTE_LIMIT * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut quoted: String = text.chars().take(QUOTE_LIMIT).collect();
    if quoted.len() < text.len() {
        quoted.push('…');
    }
    format!(": {quoted:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_delivery_and_body() {
        // printf '%s.%s\n%s' 1700000000 "$DELIVERY" '{"a":1}' |
        //   openssl dgst -sha256 -hmac 0123456789abcdef
        let delivery = "01a22e72-0a1c-707d-8567-4c20593555ff:Webhook";
        assert_eq!(
            signature(b"0123456789abcdef", 1_700_000_000, delivery, br#"{"a":1}"#),
            "sha256=d5385a693ffeb9175103395c6e5e5010a68790e14a9e744def9bb8f22f77fe4d"
        );
    }
}
