//! Clients and extension points for Rust programs that work with the notifications backend.
//!
//! * [`NotificationService`]: sends notifications to the backend over HTTP (upstream's node
//!   `NotificationService`), with retries and idempotency keys; [`NotificationsClient`]: a
//!   user's notifications and settings (upstream's frontend `NotificationsClient`).
//! * [`SignalsSubscriber`]: a user's live signals over the signals WebSocket, reconnecting
//!   (upstream's frontend `SignalClient`).
//! * [`ServiceTokenSigner`]: service tokens signed with a key of the backend.
//! * With the `server` feature, the backend's extension points: `RecipientResolver` turns the
//!   entity refs of a send into the user refs that receive it (upstream's
//!   `NotificationRecipientResolver`); `Catalog` is where entities and their relations come
//!   from, `CatalogResolver` upstream's default resolver over any catalog; `Processor` hooks
//!   around the storing of every notification, and its delivery to other channels (upstream's
//!   `NotificationProcessor`).
//!
//! # Features
//!
//! | feature         | gives                                                      | default |
//! |-----------------|------------------------------------------------------------|---------|
//! | `client`        | [`NotificationService`], [`NotificationsClient`]           | yes     |
//! | `signals`       | [`SignalsSubscriber`]                                      | yes     |
//! | `service-token` | [`ServiceTokenSigner`] (implies `client`)                  | yes     |
//! | `rustls`        | `https://` and `wss://` over rustls, with ring             | yes     |
//! | `native-tls`    | `https://` and `wss://` over the platform's TLS (OpenSSL)  | no      |
//! | `server`        | `Catalog`, `RecipientResolver`, `Processor`                | no      |
//!
//! The defaults are what a service that sends notifications, or shows a user's, links: the
//! clients, over a TLS that needs no OpenSSL. `server` is for the backend and for authors of
//! processors and resolvers, which run inside it: a sending service has no use for them. A
//! service that only sends can go leaner still: `default-features = false, features =
//! ["client", "service-token", "rustls"]`, or without TLS at all for a backend it reaches
//! over plain `http://` (an `https://` URL is then refused when the client is built).
//!
//! `rustls` trusts the certificates of the platform (as reqwest does): a program without any
//! (a bare container image) cannot build an HTTP client with it, `http://` or not. It uses
//! the crypto provider the program installed as its default, if any, else ring. With both
//! TLS features on, `native-tls` is used.
//!
//! # Sending
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use notifications_node::NotificationService;
//! use notifications_node::common::{
//!     NotificationPayload, NotificationRecipients, NotificationSendOptions,
//! };
//!
//! let notifications = NotificationService::builder("http://localhost:7007/api/notifications")
//!     .token(std::env::var("NOTIFICATIONS_TOKEN")?)
//!     .build()?;
//! notifications
//!     .send(NotificationSendOptions {
//!         recipients: NotificationRecipients::entities(["user:default/jane"]),
//!         payload: NotificationPayload { title: "Build 42 failed".into(), ..Default::default() },
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! (the whole program: `examples/send.rs`). It posts to the base URL as upstream's client does
//! and returns the notifications created or updated. The token comes from `.token(...)` (a
//! static token), `.token_provider(ServiceTokenSigner::from_base64(secret, "my-service")?)`
//! (signs a short-lived service token per request with a `backend.auth.keys` secret, as the
//! backend's `token --service` does; the subject becomes the origin) or your own
//! `TokenProvider`. Each attempt times out (`.timeout`, 30 s); no answer, 429 and 5xx are
//! retried with exponential backoff and jitter, honouring `Retry-After` (`.retry(RetryPolicy
//! {..})`, 3 retries by default), other statuses never. Every send carries an
//! `Idempotency-Key`, the same on each retry, so a retry after a lost answer does not notify
//! twice (`send_with_idempotency_key` takes your own key). Errors are a `ClientError` with the
//! status, the backend's error (`name`, `message`) and a stable `code()` (`rejected`,
//! `unavailable`, `unreachable`, ...). The service is cheap to clone: clones share one
//! connection pool.
//!
//! `NotificationsClient` (same builder, a user's token) makes the calls of upstream's frontend
//! client: `get_notifications` (every filter, ordering and paging of
//! `NotificationListOptions`), `get_notification`, `update_notifications`, `get_status`,
//! `get_topics`, `get_notification_settings`, `update_notification_settings`.
//!
//! # Live updates
//!
//! `SignalsSubscriber` is the counterpart of Backstage's frontend `SignalClient`: it opens the
//! signals WebSocket (`ws(s)://<backend>/api/signals`, the user token as the subprotocol),
//! subscribes to the `notifications` channel and yields typed events:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use notifications_node::{SignalEvent, SignalsSubscriber};
//!
//! let mut signals = SignalsSubscriber::builder("http://localhost:7007")
//!     .token(std::env::var("NOTIFICATIONS_TOKEN")?) // a user's token
//!     .connect()
//!     .await?;
//! while let Some(event) = signals.next().await {
//!     match event? {
//!         SignalEvent::Notification(signal) => println!("{signal:?}"), // new, read, unread
//!         SignalEvent::Reconnected => { /* signals may have been missed: refetch */ }
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! (the whole program: `examples/subscribe.rs`; `into_stream()` gives a `Stream`). The base
//! URL is the backend's (the notifications plugin's URL works too). `connect()` tries once and
//! returns why it failed: `SignalsError::Unauthorized` for a refused token (401 at the
//! handshake), `Unreachable`, `Status`. Once connected, a background task reads the socket
//! (answering the backend's pings) and, when the connection drops or goes quiet
//! (`.idle_timeout`, 75 s), reconnects with exponential backoff and jitter
//! (`.reconnect(RetryPolicy {..})`, forever from 1 s to 30 s by default), asks the token source
//! again (`.token_provider` can refresh user tokens), subscribes again and yields
//! `SignalEvent::Reconnected`. A token refused at a reconnect, or retries spent, ends the
//! subscription with the error. Dropping the subscriber closes the connection. Without a token
//! the backend serves the guest: broadcasts only. `wss://` uses the TLS feature the HTTP
//! clients use.

#[cfg(feature = "server")]
mod catalog;
#[cfg(any(feature = "client", feature = "signals"))]
mod client;
#[cfg(feature = "server")]
mod processor;
#[cfg(feature = "server")]
mod resolver;

/// What the workspace's fuzz targets call: the query strings the inbox client sends, which the
/// backend must read back to the same options. Not an API: hidden, and free to change.
#[cfg(feature = "client")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::client::inbox::{filter_query, list_query};
}

#[cfg(feature = "server")]
pub use catalog::{
    Catalog, CatalogEntity, CatalogError, EntityRelation, RELATION_CHILD_OF, RELATION_HAS_MEMBER,
    RELATION_MEMBER_OF, RELATION_OWNED_BY, RELATION_OWNER_OF, RELATION_PARENT_OF,
};
#[cfg(feature = "service-token")]
pub use client::ServiceTokenSigner;
#[cfg(feature = "client")]
pub use client::{
    ClientBuilder, ClientError, NotificationService, NotificationsClient, ServerError,
};
#[cfg(any(feature = "client", feature = "signals"))]
pub use client::{RetryPolicy, StaticToken, TokenError, TokenProvider};
#[cfg(feature = "signals")]
pub use client::{SignalEvent, SignalsBuilder, SignalsError, SignalsSubscriber};
pub use notifications_common as common;
#[cfg(feature = "server")]
pub use processor::{NotificationProcessorFilters, Processor, ProcessorError};
#[cfg(feature = "server")]
pub use resolver::{CatalogResolver, RecipientResolver, ResolveError, ResolvedRecipients};
