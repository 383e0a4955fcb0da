//! Publishing signals to connected clients. For now in-process only: subscribers (the signals
//! transports) receive every published message and pick what their connection may see.

use notifications_common::{
    NOTIFICATIONS_CHANNEL, NotificationSignal, SignalMessage, SignalRecipients,
};
use tokio::sync::broadcast;

/// Messages kept for subscribers that fall behind before they lose some.
const CAPACITY: usize = 4096;

/// Fans signals out to every subscriber in this process.
#[derive(Clone, Debug)]
pub struct SignalHub {
    sender: broadcast::Sender<SignalMessage>,
}

impl Default for SignalHub {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl SignalHub {
    pub fn publish(&self, message: SignalMessage) {
        // No subscriber is not an error: nobody is listening right now.
        let _ = self.sender.send(message);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SignalMessage> {
        self.sender.subscribe()
    }

    /// A notifications-channel signal to one user's connections.
    pub fn to_user(&self, user_ref: &str, message: NotificationSignal) {
        self.publish(SignalMessage {
            recipients: SignalRecipients::User {
                entity_ref: vec![user_ref.to_owned()],
            },
            channel: NOTIFICATIONS_CHANNEL.to_owned(),
            message,
        });
    }

    /// A notifications-channel signal to everyone.
    pub fn to_everyone(&self, message: NotificationSignal) {
        self.publish(SignalMessage {
            recipients: SignalRecipients::Broadcast,
            channel: NOTIFICATIONS_CHANNEL.to_owned(),
            message,
        });
    }
}
