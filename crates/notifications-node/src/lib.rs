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
