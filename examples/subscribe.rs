//! Print a user's live notification signals, as Backstage's frontend receives them.
//!
//! ```sh
//! export NOTIFICATIONS_TOKEN=$(notifications-backend token --user user:default/jane)
//! cargo run -p notifications-node --example subscribe -- http://localhost:7007
//! ```
//!
//! The subscriber reconnects with backoff when the connection drops, and says so: signals sent
//! meanwhile were missed, so a UI would refetch then. A refused token ends it at once.

// Printing is what this example is for; the lint is aimed at the library and service crates.
#![allow(clippy::print_stdout)]

use notifications_node::common::NotificationSignal;
use notifications_node::{SignalEvent, SignalsSubscriber};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let backend = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://localhost:7007".into());
    let token = std::env::var("NOTIFICATIONS_TOKEN")?;

    let mut signals = SignalsSubscriber::builder(&backend)
        .token(token)
        .connect()
        .await?;
    println!("subscribed to {backend}; Ctrl-C to stop");
    while let Some(event) = signals.next().await {
        match event? {
            SignalEvent::Notification(NotificationSignal::NewNotification { notification_id }) => {
                println!("new: {notification_id}");
            }
            SignalEvent::Notification(NotificationSignal::NotificationRead {
                notification_ids,
            }) => println!("read: {}", notification_ids.join(", ")),
            SignalEvent::Notification(NotificationSignal::NotificationUnread {
                notification_ids,
            }) => println!("unread: {}", notification_ids.join(", ")),
            SignalEvent::Reconnected => println!("reconnected (signals may have been missed)"),
            _ => {}
        }
    }
    Ok(())
}
