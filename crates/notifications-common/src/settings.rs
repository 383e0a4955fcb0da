use serde::{Deserialize, Serialize};

/// The id of the in-app inbox channel; every other channel is a processor's name.
pub const WEB_CHANNEL: &str = "Web";

/// A user's notification switches: channels, then origins (senders), then topics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationSettings {
    pub channels: Vec<ChannelSetting>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelSetting {
    /// `Web` or the name of an installed processor (the document lists them).
    pub id: String,
    /// Only present when configured (`notifications.defaultSettings`); users cannot set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    pub origins: Vec<OriginSetting>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OriginSetting {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::bounds::NonEmptyShortText))]
    pub id: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<TopicSetting>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicSetting {
    #[cfg_attr(feature = "openapi", schema(value_type = crate::bounds::NonEmptyShortText))]
    pub id: String,
    pub enabled: bool,
}

impl OriginSetting {
    pub fn topics(&self) -> &[TopicSetting] {
        self.topics.as_deref().unwrap_or_default()
    }
}

/// Upstream's `isNotificationsEnabledFor`: whether `settings` let a notification from `origin`
/// (with `topic`) through `channel`. Ids match exactly. An unknown channel is enabled; an unknown
/// origin follows the channel's flag (enabled when unset); a known topic decides for itself;
/// otherwise the origin decides.
pub fn is_notifications_enabled_for(
    settings: &NotificationSettings,
    channel: &str,
    origin: &str,
    topic: Option<&str>,
) -> bool {
    let Some(channel) = settings.channels.iter().find(|c| c.id == channel) else {
        return true;
    };
    let Some(origin) = channel.origins.iter().find(|o| o.id == origin) else {
        return channel.enabled.unwrap_or(true);
    };
    topic
        .and_then(|t| origin.topics().iter().find(|ts| ts.id == t))
        .map_or(origin.enabled, |t| t.enabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(channel_enabled: Option<bool>) -> NotificationSettings {
        NotificationSettings {
            channels: vec![ChannelSetting {
                id: "Web".into(),
                enabled: channel_enabled,
                origins: vec![OriginSetting {
                    id: "o".into(),
                    enabled: false,
                    topics: Some(vec![TopicSetting {
                        id: "t".into(),
                        enabled: true,
                    }]),
                }],
            }],
        }
    }

    #[test]
    fn origin_then_topic_decide() {
        let s = settings(None);
        assert!(
            is_notifications_enabled_for(&s, "Email", "o", None),
            "unknown channel"
        );
        assert!(
            is_notifications_enabled_for(&s, "Web", "other", None),
            "unknown origin"
        );
        assert!(
            !is_notifications_enabled_for(&s, "Web", "o", None),
            "origin disabled"
        );
        assert!(
            !is_notifications_enabled_for(&s, "Web", "o", Some("x")),
            "unknown topic"
        );
        assert!(
            is_notifications_enabled_for(&s, "Web", "o", Some("t")),
            "topic enabled"
        );
        assert!(
            is_notifications_enabled_for(&s, "web", "o", None),
            "ids match exactly: 'web' is another (unknown) channel"
        );
    }

    #[test]
    fn opt_in_channel_blocks_unknown_origins() {
        assert!(!is_notifications_enabled_for(
            &settings(Some(false)),
            "Web",
            "other",
            None
        ));
    }

    #[test]
    fn topics_key_is_optional_on_input() {
        let s: NotificationSettings = serde_json::from_str(
            r#"{"channels":[{"id":"Web","origins":[{"id":"o","enabled":true}]}]}"#,
        )
        .unwrap();
        assert_eq!(s.channels[0].origins[0].topics, None);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"channels":[{"id":"Web","origins":[{"id":"o","enabled":true}]}]}"#
        );
    }
}
