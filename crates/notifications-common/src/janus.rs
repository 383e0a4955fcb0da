//! Wire types of the janus-idp notifications API (`@janus-idp/plugin-notifications-backend`
//! 1.x), which the backend serves beside upstream's for janus's frontend and scripts.

use serde::{Deserialize, Serialize};

/// `POST /notifications`: a message to users and groups (`namespace/name`), or to everyone
/// (a system message) when both lists are empty or absent. Other keys are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JanusCreateRequest {
    pub origin: String,
    pub title: String,
    /// A string when present (`null` is refused).
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = false))]
    pub message: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = false))]
    pub topic: Option<String>,
    #[serde(default)]
    pub target_users: Vec<String>,
    #[serde(default)]
    pub target_groups: Vec<String>,
    #[serde(default)]
    pub actions: Vec<JanusActionInput>,
}

/// A link offered with a message, as sent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JanusActionInput {
    pub title: String,
    pub url: String,
}

/// The answer to a create: the new message's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JanusCreateResponse {
    pub message_id: String,
}

/// A message as its reader sees it (an item of the list answer, a bare array). Every key is
/// always present; `message` and `topic` are `null` when unset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JanusMessage {
    pub id: String,
    /// As stored: `YYYY-MM-DDTHH:MM:SS.sssZ`.
    pub created: Option<String>,
    pub is_system: bool,
    pub read_by_user: bool,
    pub origin: String,
    pub title: String,
    pub message: Option<String>,
    pub topic: Option<String>,
    pub actions: Vec<JanusAction>,
}

/// A stored action (the key order is janus's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JanusAction {
    pub id: String,
    pub url: String,
    pub title: String,
}

/// `GET /notifications/count`: a JSON number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JanusCount {
    pub count: i64,
}
