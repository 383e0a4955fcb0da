//! Extension points and clients for Rust programs that work with the notifications backend.
//!
//! * [`RecipientResolver`]: turns the entity refs of a send into the user refs that receive it
//!   (upstream's `NotificationRecipientResolver` extension point).

mod resolver;

pub use notifications_common as common;
pub use resolver::{RecipientResolver, ResolveError, ResolvedRecipients};
