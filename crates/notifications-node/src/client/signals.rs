//! [`SignalsSubscriber`]: the live notification signals of a user, over Backstage's signals
//! WebSocket (`/api/signals`), the Rust counterpart of upstream's frontend `SignalClient`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use notifications_common::{
    NOTIFICATIONS_CHANNEL, NOTIFICATIONS_MOUNT, NotificationSignal, SIGNALS_MOUNT,
};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use super::retry::RetryPolicy;
use super::tls::{self, WebSocketTls};
use super::token::{StaticToken, TokenError, TokenProvider};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The payload of the ping that follows the subscribe frame: the server handles frames in
/// order, so its pong means the subscription is in effect.
const SUBSCRIBED_PING: &[u8] = b"notifications-node:subscribed";
/// Events read ahead of the caller. When the caller is slower than this, the socket is no
/// longer read and the backend drops the connection (close 1013); a reconnect follows.
const BUFFER: usize = 256;

/// What a [`SignalsSubscriber`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalEvent {
    /// A notification of the user was created, read or marked unread.
    Notification(NotificationSignal),
    /// The connection dropped and is back (subscribed again): signals sent while it was down
    /// were missed, so refetch what is shown (e.g. `NotificationsClient::get_status`).
    Reconnected,
}

/// Why a [`SignalsSubscriber`] could not connect, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalsError {
    /// The subscriber was built wrong: a base URL that is not http(s) or ws(s), a token that
    /// cannot be a header.
    #[error("invalid signals configuration: {0}")]
    Config(String),
    /// The token source failed.
    #[error("could not obtain a token: {0}")]
    Token(#[source] TokenError),
    /// The backend refused the token (401 at the handshake): retrying with it is useless.
    #[error("the backend refused the token (401)")]
    Unauthorized,
    /// The backend answered the handshake with another error status (e.g. 404 when it serves
    /// no signals). 429 and 5xx are retried when reconnecting.
    #[error("the signals handshake failed with status {status}")]
    Status { status: u16, body: String },
    /// No connection: refused, closed, timed out, or not a WebSocket. When reconnecting, this
    /// is only returned once the reconnect policy's retries are spent.
    #[error("could not connect to the signals endpoint: {0}")]
    Unreachable(#[source] BoxError),
}

impl SignalsError {
    /// A stable, snake_case name of the kind of failure: `invalid_config`,
    /// `token_unavailable`, `unauthorized`, `rejected`, `unavailable` (429 or 5xx),
    /// `unreachable`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "invalid_config",
            Self::Token(_) => "token_unavailable",
            Self::Unauthorized => "unauthorized",
            Self::Status { status, .. } if super::retry::is_retryable_status(*status) => {
                "unavailable"
            }
            Self::Status { .. } => "rejected",
            Self::Unreachable(_) => "unreachable",
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Token(_) | Self::Unreachable(_) => true,
            Self::Status { status, .. } => super::retry::is_retryable_status(*status),
            Self::Config(_) | Self::Unauthorized => false,
        }
    }

    fn from_handshake(error: tungstenite::Error) -> Self {
        match error {
            tungstenite::Error::Http(response) => {
                let status = response.status().as_u16();
                if status == 401 {
                    return Self::Unauthorized;
                }
                let body = response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Self::Status { status, body }
            }
            tungstenite::Error::Url(e) => Self::Config(e.to_string()),
            other => Self::Unreachable(Box::new(other)),
        }
    }
}

/// Configures a [`SignalsSubscriber`].
#[must_use]
pub struct SignalsBuilder {
    base_url: String,
    tokens: Option<Arc<dyn TokenProvider>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    reconnect: RetryPolicy,
}

impl SignalsBuilder {
    /// The same user token on every connection.
    pub fn token(self, token: impl Into<String>) -> Self {
        self.token_provider(StaticToken::new(token))
    }

    /// A token from `provider` before every connection and reconnection, so expiring user
    /// tokens can be refreshed. Without a token the backend serves the guest: broadcasts only.
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.tokens = Some(Arc::new(provider));
        self
    }

    /// The longest connecting and subscribing may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A connection on which nothing came for this long is taken for dead and replaced
    /// (default 75 s; the backend pings every 30 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How to reconnect after the connection drops: the delay doubles from `initial_delay` up
    /// to `max_delay`, with jitter (the first attempt waits too, so that the clients of a
    /// restarting backend do not all come back at once); a failed reconnect is retried
    /// `max_retries` times, then the subscriber yields the last error and ends. The default
    /// retries forever, from 1 s to 30 s. A refused token (401) or another 4xx ends it at once.
    pub fn reconnect(mut self, policy: RetryPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Connects and subscribes to the `notifications` channel, once: failing to is returned
    /// (e.g. [`SignalsError::Unauthorized`]), not retried. Later drops are reconnected in a
    /// background task, which ends when the subscriber is dropped.
    pub async fn connect(self) -> Result<SignalsSubscriber, SignalsError> {
        let url = signals_url(&self.base_url)?;
        if url.scheme() == "wss" && !tls::ENABLED {
            return Err(SignalsError::Config(format!("{url}: {}", tls::MISSING)));
        }
        let tls = WebSocketTls::new(&url).map_err(|e| SignalsError::Config(format!("TLS: {e}")))?;
        let config = Arc::new(Config {
            url,
            tls,
            tokens: self.tokens,
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            reconnect: self.reconnect,
        });
        let socket = open(&config).await?;
        let (tx, events) = mpsc::channel(BUFFER);
        tokio::spawn(run(config, socket, tx));
        Ok(SignalsSubscriber { events })
    }
}

impl std::fmt::Debug for SignalsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalsBuilder")
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("reconnect", &self.reconnect)
            .finish_non_exhaustive()
    }
}

/// A user's live notification signals: new notifications, and notifications read or marked
/// unread elsewhere (another tab, another device). Reconnects with backoff when the
/// connection drops, and says so with [`SignalEvent::Reconnected`].
///
/// ```no_run
/// # async fn run() -> Result<(), notifications_node::SignalsError> {
/// use notifications_node::{SignalEvent, SignalsSubscriber};
///
/// let mut signals = SignalsSubscriber::builder("http://localhost:7007")
///     .token("<a user token>")
///     .connect()
///     .await?;
/// while let Some(event) = signals.next().await {
///     match event? {
///         SignalEvent::Notification(signal) => println!("{signal:?}"),
///         SignalEvent::Reconnected => println!("reconnected: refetch"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SignalsSubscriber {
    events: mpsc::Receiver<Result<SignalEvent, SignalsError>>,
}

impl SignalsSubscriber {
    /// `base_url`: the backend's base URL (`http(s)://host:port`, or with the path prefix it
    /// is served under); `ws(s)://` works too, and the notifications plugin's URL
    /// (`.../api/notifications`) is taken for the same backend. Signals are at `api/signals`
    /// under it.
    pub fn builder(base_url: &str) -> SignalsBuilder {
        SignalsBuilder {
            base_url: base_url.to_owned(),
            tokens: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            reconnect: RetryPolicy {
                max_retries: u32::MAX,
                initial_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
            },
        }
    }

    /// The next event; an error ends the subscription (`None` follows).
    pub async fn next(&mut self) -> Option<Result<SignalEvent, SignalsError>> {
        self.events.recv().await
    }

    /// The events as a [`futures_util::Stream`].
    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<SignalEvent, SignalsError>> + Send + 'static {
        futures_util::stream::unfold(self, |mut s| async move {
            let event = s.next().await?;
            Some((event, s))
        })
    }
}

struct Config {
    url: Url,
    tls: WebSocketTls,
    tokens: Option<Arc<dyn TokenProvider>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    reconnect: RetryPolicy,
}

/// `ws(s)://.../api/signals` from a backend's base URL.
fn signals_url(base_url: &str) -> Result<Url, SignalsError> {
    let mut url = Url::parse(base_url)
        .map_err(|e| SignalsError::Config(format!("base URL {base_url:?}: {e}")))?;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => "",
    };
    if scheme.is_empty() || url.cannot_be_a_base() {
        return Err(SignalsError::Config(format!(
            "base URL {base_url:?}: expected an http(s) or ws(s) URL, e.g. http://localhost:7007"
        )));
    }
    url.set_scheme(scheme)
        .map_err(|()| SignalsError::Config(format!("base URL {base_url:?}")))?;
    let mut path = url.path().trim_end_matches('/').to_owned();
    for plugin in [NOTIFICATIONS_MOUNT, SIGNALS_MOUNT] {
        if let Some(prefix) = path.strip_suffix(plugin) {
            path = prefix.to_owned();
        }
    }
    url.set_path(&format!("{path}{SIGNALS_MOUNT}"));
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// Connects, subscribes, and waits until the subscription is in effect.
async fn open(config: &Config) -> Result<Socket, SignalsError> {
    let token = match &config.tokens {
        Some(provider) => Some(provider.token().await.map_err(SignalsError::Token)?),
        None => None,
    };
    let mut request = config
        .url
        .as_str()
        .into_client_request()
        .map_err(SignalsError::from_handshake)?;
    if let Some(token) = token {
        // Backstage's frontend offers the token as the only subprotocol; the backend echoes it.
        let value = HeaderValue::from_str(&token)
            .map_err(|_| SignalsError::Config("the token cannot be sent in a header".into()))?;
        request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    let connect = async {
        let (mut socket, _) = config
            .tls
            .connect(request)
            .await
            .map_err(SignalsError::from_handshake)?;
        subscribe(&mut socket)
            .await
            .map_err(|e| SignalsError::Unreachable(Box::new(e)))?;
        Ok(socket)
    };
    match tokio::time::timeout(config.connect_timeout, connect).await {
        Ok(result) => result,
        Err(_) => Err(SignalsError::Unreachable(
            format!(
                "no connection within {:?} to {}",
                config.connect_timeout, config.url
            )
            .into(),
        )),
    }
}

async fn subscribe(socket: &mut Socket) -> Result<(), tungstenite::Error> {
    let frame = serde_json::json!({"action": "subscribe", "channel": NOTIFICATIONS_CHANNEL});
    socket.send(Message::text(frame.to_string())).await?;
    socket
        .send(Message::Ping(SUBSCRIBED_PING.to_vec().into()))
        .await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Pong(payload))) if &payload[..] == SUBSCRIBED_PING => return Ok(()),
            Some(Ok(Message::Close(_))) | None => return Err(tungstenite::Error::ConnectionClosed),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
        }
    }
}

/// Why a connection stopped being served.
enum End {
    /// The subscriber was dropped: close and stop.
    CallerLeft,
    /// The backend closed, the connection broke or went quiet: reconnect.
    Dropped,
}

/// The background task: serves the connection, reconnects when it drops.
async fn run(
    config: Arc<Config>,
    mut socket: Socket,
    tx: mpsc::Sender<Result<SignalEvent, SignalsError>>,
) {
    loop {
        if let End::CallerLeft = serve(&config, &mut socket, &tx).await {
            let _ = socket.close(None).await;
            return;
        }
        drop(socket);
        let mut failures = 0u32;
        socket = loop {
            // A first delay too, with jitter: clients dropped together by a restarting backend
            // do not all come back at once.
            let delay = config
                .reconnect
                .delay(failures.min(30), None)
                .unwrap_or(config.reconnect.max_delay);
            let attempt = async {
                tokio::time::sleep(delay).await;
                open(&config).await
            };
            let result = tokio::select! {
                result = attempt => result,
                () = tx.closed() => return,
            };
            match result {
                Ok(socket) => break socket,
                Err(e) if e.is_transient() && failures < config.reconnect.max_retries => {
                    tracing::debug!(error = %e, failures, "signals: reconnecting failed");
                    failures += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "signals: giving up reconnecting");
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        };
        tracing::debug!("signals: reconnected");
        if tx.send(Ok(SignalEvent::Reconnected)).await.is_err() {
            let _ = socket.close(None).await;
            return;
        }
    }
}

#[derive(Deserialize)]
struct Frame {
    channel: String,
    message: serde_json::Value,
}

async fn serve(
    config: &Config,
    socket: &mut Socket,
    tx: &mpsc::Sender<Result<SignalEvent, SignalsError>>,
) -> End {
    loop {
        let message = tokio::select! {
            message = tokio::time::timeout(config.idle_timeout, socket.next()) => message,
            () = tx.closed() => return End::CallerLeft,
        };
        let text = match message {
            Ok(Some(Ok(Message::Text(text)))) => text,
            // Pings are answered by tungstenite as it reads.
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_)))) => continue,
            Ok(Some(Ok(Message::Frame(_)))) => continue,
            Ok(Some(Ok(Message::Close(frame)))) => {
                tracing::debug!(?frame, "signals: the backend closed the connection");
                return End::Dropped;
            }
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "signals: the connection broke");
                return End::Dropped;
            }
            Ok(None) => return End::Dropped,
            Err(_) => {
                tracing::debug!("signals: nothing came for {:?}", config.idle_timeout);
                return End::Dropped;
            }
        };
        let Some(signal) = parse(&text) else {
            continue;
        };
        if tx
            .send(Ok(SignalEvent::Notification(signal)))
            .await
            .is_err()
        {
            return End::CallerLeft;
        }
    }
}

/// A signal of the notifications channel; other channels and unknown actions (from a newer
/// backend) are skipped.
fn parse(text: &str) -> Option<NotificationSignal> {
    let frame = match serde_json::from_str::<Frame>(text) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::debug!(error = %e, "signals: skipped a frame that is not {{channel, message}}");
            return None;
        }
    };
    if frame.channel != NOTIFICATIONS_CHANNEL {
        return None;
    }
    serde_json::from_value(frame.message)
        .inspect_err(|e| tracing::debug!(error = %e, "signals: skipped an unknown signal"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_the_backends_signals_endpoint() {
        let url = |base: &str| signals_url(base).map(|u| u.to_string());
        assert_eq!(
            url("http://localhost:7007").unwrap(),
            "ws://localhost:7007/api/signals"
        );
        assert_eq!(
            url("https://backstage.example.com/prefix/").unwrap(),
            "wss://backstage.example.com/prefix/api/signals"
        );
        assert_eq!(
            url("http://host:7007/api/notifications/").unwrap(),
            "ws://host:7007/api/signals"
        );
        assert_eq!(
            url("wss://host/api/signals").unwrap(),
            "wss://host/api/signals"
        );
        assert!(matches!(url("ftp://host"), Err(SignalsError::Config(_))));
        assert!(url("not a url").is_err());
    }

    #[test]
    fn only_notification_signals_are_yielded() {
        assert_eq!(
            parse(
                r#"{"channel":"notifications","message":{"action":"new_notification","notification_id":"a"}}"#
            ),
            Some(NotificationSignal::NewNotification {
                notification_id: "a".into()
            })
        );
        assert_eq!(
            parse(
                r#"{"channel":"notifications","message":{"action":"notification_read","notification_ids":["a","b"]}}"#
            ),
            Some(NotificationSignal::NotificationRead {
                notification_ids: vec!["a".into(), "b".into()]
            })
        );
        assert_eq!(
            parse(
                r#"{"channel":"other","message":{"action":"new_notification","notification_id":"a"}}"#
            ),
            None
        );
        assert_eq!(
            parse(r#"{"channel":"notifications","message":{"action":"from_the_future"}}"#),
            None
        );
        assert_eq!(parse("not json"), None);
    }

    #[test]
    fn errors_say_whether_to_retry() {
        assert!(!SignalsError::Unauthorized.is_transient());
        assert_eq!(SignalsError::Unauthorized.code(), "unauthorized");
        let not_found = SignalsError::Status {
            status: 404,
            body: String::new(),
        };
        assert!(!not_found.is_transient());
        let unavailable = SignalsError::Status {
            status: 503,
            body: String::new(),
        };
        assert!(unavailable.is_transient());
        assert_eq!(unavailable.code(), "unavailable");
    }

    #[test]
    fn subscribers_can_move_across_tasks() {
        fn movable<T: Send + 'static>() {}
        movable::<SignalsSubscriber>();
    }
}
