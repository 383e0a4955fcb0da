//! Where entities come from when a send names groups or owned entities.
//!
//! The embedded catalog reads Backstage entity files (`catalog-info.yaml` form) listed in
//! `notifications.catalog.files`, and reloads them when they change; the remote catalog asks a
//! Backstage catalog over HTTP (`notifications.catalog.remote`).

mod embedded;
mod entity_file;
mod load;
mod remote;

pub use embedded::EmbeddedCatalog;
pub use load::LoadError;
pub use remote::RemoteCatalog;
