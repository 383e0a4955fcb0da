//! Extension points and clients for Rust programs that work with the notifications backend.
//!
//! * [`RecipientResolver`]: turns the entity refs of a send into the user refs that receive it
//!   (upstream's `NotificationRecipientResolver` extension point).
//! * [`Catalog`]: where entities and their relations come from; [`CatalogResolver`] is upstream's
//!   default resolver over any catalog.
//! * [`Processor`]: hooks around the storing of every notification, and its delivery to other
//!   channels (upstream's `NotificationProcessor`).
//! * [`NotificationService`]: sends notifications to the backend over HTTP (upstream's node
//!   `NotificationService`), with retries and idempotency keys; [`NotificationsClient`]: a
//!   user's notifications and settings (upstream's frontend `NotificationsClient`);
//!   [`SignalsSubscriber`]: a user's live signals over the signals WebSocket, reconnecting
//!   (upstream's frontend `SignalClient`).

mod catalog;
mod client;
mod processor;
mod resolver;

/// What the workspace's fuzz targets call: the query strings the inbox client sends, which the
/// backend must read back to the same options. Not an API: hidden, and free to change.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::client::inbox::{filter_query, list_query};
}

pub use catalog::{
    Catalog, CatalogEntity, CatalogError, EntityRelation, RELATION_CHILD_OF, RELATION_HAS_MEMBER,
    RELATION_MEMBER_OF, RELATION_OWNED_BY, RELATION_OWNER_OF, RELATION_PARENT_OF,
};
pub use client::{
    ClientBuilder, ClientError, NotificationService, NotificationsClient, RetryPolicy, ServerError,
    ServiceTokenSigner, SignalEvent, SignalsBuilder, SignalsError, SignalsSubscriber, StaticToken,
    TokenError, TokenProvider,
};
pub use notifications_common as common;
pub use processor::{NotificationProcessorFilters, Processor, ProcessorError};
pub use resolver::{CatalogResolver, RecipientResolver, ResolveError, ResolvedRecipients};
