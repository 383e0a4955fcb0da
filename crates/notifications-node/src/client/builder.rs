//! [`ClientBuilder`]: what the HTTP clients are configured with.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::ClientError;
use super::retry::RetryPolicy;
use super::tls;
use super::token::{StaticToken, TokenProvider};
use super::transport::Transport;

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
    pub(super) fn new(base_url: &str) -> Self {
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

    /// A token from `provider` before every attempt, e.g. a `ServiceTokenSigner` (feature
    /// `service-token`).
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

    pub(super) fn transport(self) -> Result<Transport, ClientError> {
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
        if base.scheme() == "https" && !tls::ENABLED {
            return Err(ClientError::Config(format!(
                "base URL {:?}: {}",
                self.base_url,
                tls::MISSING
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout);
        let http = tls::http(http)
            .map_err(|e| ClientError::Config(format!("TLS: {e}")))?
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
    use crate::client::{NotificationService, NotificationsClient};

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
        let https = build("https://host/api/notifications");
        if tls::ENABLED {
            assert_eq!(
                https.unwrap().url(&["notifications", "a b/c"]).as_str(),
                "https://host/api/notifications/notifications/a%20b%2Fc"
            );
        } else {
            assert!(
                matches!(https, Err(ClientError::Config(_))),
                "no TLS built in"
            );
        }
        assert!(build("ftp://host/api/notifications").is_err());
        assert!(build("not a url").is_err());
        let no_token = ClientBuilder::<NotificationService>::new("http://host").transport();
        assert!(matches!(no_token, Err(ClientError::Config(_))));
    }
}
