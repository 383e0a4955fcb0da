use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

#[cfg(feature = "openapi")]
use crate::bounds;
use crate::{NotificationSeverity, Timestamp};

/// The id of a stored notification (a UUID, shown in its hyphenated form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
#[serde(transparent)]
pub struct NotificationId(pub Uuid);

impl NotificationId {
    /// A new, time-ordered id (UUID v7: keeps index inserts local).
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl From<Uuid> for NotificationId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for NotificationId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// What a sender says: the content of a notification.
///
/// Serialises only the keys that are set, which is how upstream echoes a freshly sent payload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationPayload {
    #[cfg_attr(feature = "openapi", schema(value_type = bounds::NonEmptyShortText))]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bounds::Text>))]
    pub description: Option<String>,
    /// Where the inbox navigates: an absolute http(s) URL or a path relative to `app.baseUrl`
    /// (one leading `/` is dropped); a link to any other scheme is refused with a 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bounds::Text>))]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<NotificationSeverity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bounds::ShortText>))]
    pub topic: Option<String>,
    /// With the origin (and the user), the key under which a re-send updates the earlier notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bounds::ShortText>))]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bounds::ShortText>))]
    pub icon: Option<String>,
    /// Opaque JSON for processors and clients; stored and returned (upstream drops it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bounds::Metadata>))]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl NotificationPayload {
    pub fn severity_or_default(&self) -> NotificationSeverity {
        self.severity.unwrap_or_default()
    }
}

/// A stored notification as the API reads it back.
///
/// Serialises every key, `null` where unset (payload keys included), as upstream's reads do.
/// Deserialising is lenient about missing keys, so the create response parses into it too.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub id: NotificationId,
    /// The recipient user's entity ref; `null` for broadcasts.
    #[serde(default)]
    pub user: Option<String>,
    pub created: Timestamp,
    #[serde(default)]
    pub saved: Option<Timestamp>,
    #[serde(default)]
    pub read: Option<Timestamp>,
    #[serde(default)]
    pub updated: Option<Timestamp>,
    pub origin: String,
    pub payload: NotificationPayload,
}

impl Serialize for Notification {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Notification", 8)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("user", &self.user)?;
        s.serialize_field("created", &self.created)?;
        s.serialize_field("saved", &self.saved)?;
        s.serialize_field("read", &self.read)?;
        s.serialize_field("updated", &self.updated)?;
        s.serialize_field("origin", &self.origin)?;
        s.serialize_field("payload", &PayloadWithNulls(&self.payload))?;
        s.end()
    }
}

/// A stored payload: every key present, `null` where unset; `metadata` only when there is some.
struct PayloadWithNulls<'a>(&'a NotificationPayload);

impl Serialize for PayloadWithNulls<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut s = serializer.serialize_struct("NotificationPayload", 8)?;
        s.serialize_field("title", &p.title)?;
        s.serialize_field("description", &p.description)?;
        s.serialize_field("link", &p.link)?;
        s.serialize_field("severity", &p.severity_or_default())?;
        s.serialize_field("topic", &p.topic)?;
        s.serialize_field("scope", &p.scope)?;
        s.serialize_field("icon", &p.icon)?;
        if let Some(metadata) = &p.metadata {
            s.serialize_field("metadata", metadata)?;
        } else {
            s.skip_field("metadata")?;
        }
        s.end()
    }
}

/// A notification just created, in the shape upstream's create call answers with: `id`, `user`,
/// `created`, `origin` and the payload keys that were sent (severity defaulted), no read state.
#[derive(Debug)]
pub struct FreshNotification<'a>(pub &'a Notification);

impl Serialize for FreshNotification<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let mut s = serializer.serialize_struct("Notification", 5)?;
        s.serialize_field("id", &n.id)?;
        s.serialize_field("user", &n.user)?;
        s.serialize_field("created", &n.created)?;
        s.serialize_field("origin", &n.origin)?;
        s.serialize_field("payload", &n.payload)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Notification {
        Notification {
            id: "0190f3a2-0000-7000-8000-000000000001".parse().unwrap(),
            user: None,
            created: Timestamp::parse("2025-04-01T10:00:00Z").unwrap(),
            saved: None,
            read: None,
            updated: None,
            origin: "external:test-service".into(),
            payload: NotificationPayload {
                title: "t".into(),
                link: Some("https://example.com".into()),
                severity: Some(NotificationSeverity::Normal),
                ..Default::default()
            },
        }
    }

    #[test]
    fn stored_shape_has_every_key() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "0190f3a2-0000-7000-8000-000000000001",
                "user": null,
                "created": "2025-04-01T10:00:00.000Z",
                "saved": null, "read": null, "updated": null,
                "origin": "external:test-service",
                "payload": {"title": "t", "description": null, "link": "https://example.com",
                            "severity": "normal", "topic": null, "scope": null, "icon": null}
            })
        );
    }

    #[test]
    fn fresh_shape_has_only_sent_keys() {
        let n = sample();
        let v = serde_json::to_value(FreshNotification(&n)).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "0190f3a2-0000-7000-8000-000000000001",
                "user": null,
                "created": "2025-04-01T10:00:00.000Z",
                "origin": "external:test-service",
                "payload": {"title": "t", "link": "https://example.com", "severity": "normal"}
            })
        );
        // and the fresh shape still reads back as a Notification
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back.payload.title, "t");
        assert_eq!(back.read, None);
    }

    #[test]
    fn metadata_round_trips() {
        let mut n = sample();
        n.payload.metadata = Some(json!({"attr": 1}).as_object().unwrap().clone());
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["payload"]["metadata"], json!({"attr": 1}));
        let back: Notification = serde_json::from_value(v).unwrap();
        assert_eq!(back, n);
    }
}
