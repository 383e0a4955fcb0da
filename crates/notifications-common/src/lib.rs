//! Wire types of the Backstage-compatible notifications API.
//!
//! Everything here is plain data with serde names exactly as they travel on the wire
//! (`entityRef`, `totalCount`, `notification_id`, ...). No I/O and no framework: the node client,
//! processors and the backend all share these definitions.

pub mod bounds;
mod entity_ref;
mod janus;
mod list;
mod mounts;
mod notification;
mod preferences;
mod recipients;
mod settings;
mod severity;
mod signals;
mod timestamp;
mod user_ref;

pub use entity_ref::{DEFAULT_NAMESPACE, EntityRef, EntityRefError};
pub use janus::{
    JanusAction, JanusActionInput, JanusCount, JanusCreateRequest, JanusCreateResponse,
    JanusMessage,
};
pub use list::{
    NotificationListOptions, NotificationListResponse, NotificationStatus, OrderBy, OrderField,
    ReadAllFilters, ReadAllResponse, SortDirection, TopicsResponse, UpdateNotificationsRequest,
};
pub use mounts::{NOTIFICATIONS_MOUNT, SIGNALS_MOUNT};
pub use notification::{FreshNotification, Notification, NotificationId, NotificationPayload};
pub use preferences::{
    DigestMode, DigestPreference, MAX_QUIET_WINDOWS, NotificationPreferences, QuietWindow, Weekday,
    parse_local_time,
};
pub use recipients::{NotificationRecipients, NotificationSendOptions, OneOrMany};
pub use settings::{
    ChannelSetting, NotificationSettings, OriginSetting, TopicSetting, WEB_CHANNEL,
    is_notifications_enabled_for,
};
pub use severity::{NotificationSeverity, UnknownSeverity};
pub use signals::{NOTIFICATIONS_CHANNEL, NotificationSignal, SignalMessage, SignalRecipients};
pub use timestamp::{Timestamp, TimestampParseError};
pub use user_ref::{UserRef, UserRefError};
