//! HTTP clients of the notifications backend: [`NotificationService`] sends (upstream's node
//! `NotificationService`), [`NotificationsClient`] reads and marks a user's notifications
//! (upstream's frontend `NotificationsClient`), [`SignalsSubscriber`] follows a user's live signals
//! over the signals WebSocket (upstream's frontend `SignalClient`). Each is behind the cargo
//! feature of its name (see the crate documentation).

// What the signals subscriber shares with the HTTP clients: tokens, retries, TLS.
mod retry;
mod tls;
mod token;

#[cfg(feature = "client")]
mod builder;
#[cfg(feature = "client")]
mod error;
#[cfg(feature = "client")]
pub(crate) mod inbox;
#[cfg(feature = "client")]
mod service;
#[cfg(feature = "service-token")]
mod service_token;
#[cfg(feature = "signals")]
mod signals;
#[cfg(feature = "client")]
mod transport;

pub use retry::RetryPolicy;
pub use token::{StaticToken, TokenError, TokenProvider};

#[cfg(feature = "client")]
pub use builder::ClientBuilder;
#[cfg(feature = "client")]
pub use error::{ClientError, ServerError};
#[cfg(feature = "client")]
pub use inbox::NotificationsClient;
#[cfg(feature = "client")]
pub use service::NotificationService;
#[cfg(feature = "service-token")]
pub use service_token::ServiceTokenSigner;
#[cfg(feature = "signals")]
pub use signals::{SignalEvent, SignalsBuilder, SignalsError, SignalsSubscriber};
