//! Where the plugins are mounted, as in Backstage: the backend serves them there, and clients
//! and configuration checks recognise their paths.

/// The notifications plugin's routes.
pub const NOTIFICATIONS_MOUNT: &str = "/api/notifications";
/// The signals plugin's routes (the live-update WebSocket).
pub const SIGNALS_MOUNT: &str = "/api/signals";
