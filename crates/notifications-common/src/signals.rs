use serde::{Deserialize, Serialize};

/// The signal channel the notifications backend publishes on.
pub const NOTIFICATIONS_CHANNEL: &str = "notifications";

/// What the notifications backend tells connected clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum NotificationSignal {
    NewNotification { notification_id: String },
    NotificationRead { notification_ids: Vec<String> },
    NotificationUnread { notification_ids: Vec<String> },
}

/// Who a signal is for: the connections of some users (by any of their ownership refs), or all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SignalRecipients {
    User {
        #[serde(rename = "entityRef")]
        entity_ref: Vec<String>,
    },
    Broadcast,
}

/// A signal as published by a backend plugin (upstream's `SignalPayload`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalMessage<M = NotificationSignal> {
    pub recipients: SignalRecipients,
    pub channel: String,
    pub message: M,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn wire_shapes_match_upstream() {
        let s = SignalMessage {
            recipients: SignalRecipients::User {
                entity_ref: vec!["user:default/mock".into()],
            },
            channel: NOTIFICATIONS_CHANNEL.into(),
            message: NotificationSignal::NewNotification {
                notification_id: "x".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"recipients": {"type": "user", "entityRef": ["user:default/mock"]},
                   "channel": "notifications",
                   "message": {"action": "new_notification", "notification_id": "x"}})
        );
        assert_eq!(
            serde_json::to_value(NotificationSignal::NotificationUnread {
                notification_ids: vec!["a".into()]
            })
            .unwrap(),
            json!({"action": "notification_unread", "notification_ids": ["a"]})
        );
        assert_eq!(
            serde_json::to_value(SignalRecipients::Broadcast).unwrap(),
            json!({"type": "broadcast"})
        );
    }
}
