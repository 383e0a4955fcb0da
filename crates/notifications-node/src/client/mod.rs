//! HTTP clients of the notifications backend: [`NotificationService`] sends (upstream's node
//! `NotificationService`), [`NotificationsClient`] reads and marks a user's notifications
//! (upstream's frontend `NotificationsClient`), [`SignalsSubscriber`] follows a user's live signals
//! over the signals WebSocket (upstream's frontend `SignalClient`). The HTTP clients are built
//! the same way:
//!
//! ```no_run
//! # async fn run() -> Result<(), notifications_node::ClientError> {
//! use notifications_node::{NotificationService, ServiceTokenSigner};
//! use notifications_node::common::{NotificationPayload, NotificationRecipients, NotificationSendOptions};
//!
//! let notifications = NotificationService::builder("http://localhost:7007/api/notifications")
//!     .token_provider(ServiceTokenSigner::from_base64("<backend.auth.keys[0].secret>", "my-service")?)
//!     .build()?;
//! notifications
//!     .send(NotificationSendOptions {
//!         recipients: NotificationRecipients::entities(["user:default/jane"]),
//!         payload: NotificationPayload { title: "Build 42 failed".into(), ..Default::default() },
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

mod error;
pub(crate) mod inbox;
mod retry;
mod service;
mod service_token;
mod signals;
mod token;
mod transport;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

pub use error::{ClientError, ServerError};
pub use inbox::NotificationsClient;
pub use retry::RetryPolicy;
pub use service::NotificationService;
pub use service_token::ServiceTokenSigner;
pub use signals::{SignalEvent, SignalsBuilder, SignalsError, SignalsSubscriber};
pub use token::{StaticToken, TokenError, TokenProvider};
use transport::Transport;

/// Configures a client `C`: the backend's base URL, the token source, timeouts and retries.
#[must_use]
pub struct ClientBuilder<C> {
    base_url: String,
    tokens: Option<Arc<dyn TokenProvider>>,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    client: PhantomData<fn() -> C>,
}

impl<C> ClientBuilder<C> {
    fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            tokens: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            client: PhantomData,
        }
    }

    /// The same token on every request.
    pub fn token(self, token: impl Into<String>) -> Self {
        self.token_provider(StaticToken::new(token))
    }

    /// A token from `provider` before every attempt, e.g. a [`ServiceTokenSigner`].
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.tokens = Some(Arc::new(provider));
        self
    }

    /// The longest one attempt may take, connection included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest connecting may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// When to try again (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn transport(self) -> Result<Transport, ClientError> {
        let mut base = Url::parse(&self.base_url)
            .map_err(|e| ClientError::Config(format!("base URL {:?}: {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Config(format!(
                "base URL {:?}: expected an http or https URL, e.g. http://localhost:7007/api/notifications",
                self.base_url
            )));
        }
        // `http://host/api/notifications/` is the same plugin: requests go to its paths.
        if base.path().ends_with('/') && base.path() != "/" {
            let trimmed = base.path().trim_end_matches('/').to_owned();
            base.set_path(&trimmed);
        }
        let tokens = self.tokens.ok_or_else(|| {
            ClientError::Config("no token: call token() or token_provider()".into())
        })?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| ClientError::Config(format!("HTTP client: {e}")))?;
        Ok(Transport::new(http, base, tokens, self.retry))
    }
}

impl<C> std::fmt::Debug for ClientBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_can_be_shared_across_tasks() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<NotificationService>();
        shareable::<NotificationsClient>();
    }

    #[test]
    fn base_urls_are_http_and_lose_a_trailing_slash() {
        let build = |url: &str| {
            ClientBuilder::<NotificationService>::new(url)
                .token("t")
                .transport()
        };
        assert_eq!(
            build("http://host/api/notifications/")
                .unwrap()
                .base()
                .as_str(),
            "http://host/api/notifications"
        );
        assert_eq!(
            build("https://host/api/notifications")
                .unwrap()
                .url(&["notifications", "a b/c"])
                .as_str(),
            "https://host/api/notifications/notifications/a%20b%2Fc"
        );
        assert!(build("ftp://host/api/notifications").is_err());
        assert!(build("not a url").is_err());
        let no_token = ClientBuilder::<NotificationService>::new("http://host").transport();
        assert!(matches!(no_token, Err(ClientError::Config(_))));
    }
}
