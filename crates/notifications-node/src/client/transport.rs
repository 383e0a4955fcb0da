//! What both clients share: the base URL, the token source, and calls with retries.

use std::sync::Arc;

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;
use url::Url;

use super::retry::{RetryPolicy, is_retryable_status, parse_retry_after};
use super::token::TokenProvider;
use super::{ClientError, ServerError};

/// Cheap to clone: one connection pool shared by every clone.
#[derive(Clone)]
pub(super) struct Transport(Arc<Inner>);

struct Inner {
    http: reqwest::Client,
    /// Without a trailing slash, e.g. `http://host/api/notifications`.
    base: Url,
    tokens: Arc<dyn TokenProvider>,
    retry: RetryPolicy,
}

/// One call: what is sent on every attempt.
pub(super) struct Call<'a> {
    pub method: Method,
    pub url: Url,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<&'a str>,
}

/// A failed attempt, before it is known whether it is retried.
enum Failure {
    Unreachable(reqwest::Error),
    Status {
        status: u16,
        retry_after: Option<std::time::Duration>,
        body: String,
    },
}

impl Transport {
    pub(super) fn new(
        http: reqwest::Client,
        base: Url,
        tokens: Arc<dyn TokenProvider>,
        retry: RetryPolicy,
    ) -> Self {
        Self(Arc::new(Inner {
            http,
            base,
            tokens,
            retry,
        }))
    }

    /// The base URL itself (where upstream's node client posts sends).
    pub(super) fn base(&self) -> Url {
        self.0.base.clone()
    }

    /// `<base>/<segments...>`, each segment percent-encoded.
    #[expect(
        clippy::expect_used,
        reason = "the builder accepts only http(s) base URLs"
    )]
    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.0.base.clone();
        url.path_segments_mut()
            .expect("an http(s) base URL has path segments")
            .extend(segments);
        url
    }

    /// Makes `call`, retrying as the policy says, and parses the JSON answer.
    pub(super) async fn call<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, ClientError> {
        let policy = &self.0.retry;
        let mut retry = 0;
        loop {
            let failure = match self.attempt(&call).await? {
                Ok(body) => {
                    return serde_json::from_slice(&body)
                        .map_err(|e| ClientError::Decode(e.to_string()));
                }
                Err(failure) => failure,
            };
            let attempts = retry + 1;
            let (retry_after, retryable) = match &failure {
                Failure::Unreachable(_) => (None, true),
                Failure::Status {
                    status,
                    retry_after,
                    ..
                } => (*retry_after, is_retryable_status(*status)),
            };
            let Some(delay) = retryable
                .then(|| policy.delay(retry, retry_after))
                .flatten()
            else {
                return Err(match failure {
                    Failure::Unreachable(source) => ClientError::Unreachable { attempts, source },
                    Failure::Status { status, body, .. } => ClientError::Status {
                        status,
                        attempts,
                        error: ServerError::parse(&body),
                        body,
                    },
                });
            };
            let what = match &failure {
                Failure::Unreachable(e) => e.to_string(),
                Failure::Status { status, .. } => format!("status {status}"),
            };
            tracing::warn!(
                method = %call.method,
                url = %call.url,
                attempt = attempts,
                "notifications backend call failed ({what}); retrying in {delay:?}"
            );
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    /// One attempt: the body of a success, or what failed. Only a token failure ends the call.
    async fn attempt(&self, call: &Call<'_>) -> Result<Result<Vec<u8>, Failure>, ClientError> {
        let token = self.0.tokens.token().await.map_err(ClientError::Token)?;
        let mut request = self
            .0
            .http
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(token)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.clone());
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Ok(Err(Failure::Unreachable(e))),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // A body cut short is a connection failure like any other.
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return Ok(Err(Failure::Unreachable(e))),
        };
        if status.is_success() {
            return Ok(Ok(body.to_vec()));
        }
        Ok(Err(Failure::Status {
            status: status.as_u16(),
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
        }))
    }
}
