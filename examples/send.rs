//! Send a notification from a Rust service.
//!
//! ```sh
//! export NOTIFICATIONS_TOKEN=$(notifications-backend token --service my-service)
//! cargo run -p notifications-node --example send -- user:default/jane "Build 42 failed"
//! ```
//!
//! The three lines in `main` are all a service needs; the client retries what may pass later
//! (no connection, 429, 5xx) under one idempotency key, so a retried send notifies once.

use notifications_node::NotificationService;
use notifications_node::common::{
    NotificationPayload, NotificationRecipients, NotificationSendOptions,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (user, title) = (
        args.next().ok_or("a user ref")?,
        args.next().ok_or("a title")?,
    );
    let token = std::env::var("NOTIFICATIONS_TOKEN")?;

    let notifications = NotificationService::builder("http://localhost:7007/api/notifications")
        .token(token)
        .build()?;
    notifications
        .send(NotificationSendOptions {
            recipients: NotificationRecipients::entities([user]),
            payload: NotificationPayload {
                title,
                ..Default::default()
            },
        })
        .await?;
    Ok(())
}
