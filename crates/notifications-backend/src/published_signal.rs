//! A published signal, as connections receive it: what the store records and reads back and
//! what `signals` delivers, so it sits below both.

use actix_web::web::Bytes;
use bytestring::ByteString;

/// A committed signal with its id (which orders events and lets event-stream clients resume).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedSignal {
    pub id: i64,
    /// The entity ref whose connections get it; `None`: every connection.
    pub recipient: Option<String>,
    pub channel: String,
    /// The message as JSON text.
    pub message: String,
    /// `{"channel": ..., "message": ...}`: the WebSocket frame every connection is sent,
    /// serialised once and shared (a clone is a reference count, not a copy).
    pub frame: ByteString,
    /// The same as an event-stream event (`id:` and `data:` lines), shared likewise.
    pub sse: Bytes,
}

impl PublishedSignal {
    pub fn new(id: i64, recipient: Option<String>, channel: String, message: String) -> Self {
        // `message` is JSON this service wrote; only the channel needs quoting.
        let channel_json = serde_json::Value::String(channel.clone());
        let frame = format!(r#"{{"channel":{channel_json},"message":{message}}}"#);
        let sse = Bytes::from(format!("id: {id}\ndata: {frame}\n\n"));
        Self {
            id,
            recipient,
            channel,
            message,
            frame: frame.into(),
            sse,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_upstreams() {
        let e = PublishedSignal::new(
            7,
            None,
            "notifications".into(),
            r#"{"action":"new_notification","notification_id":"x"}"#.into(),
        );
        let frame: serde_json::Value = serde_json::from_str(&e.frame).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({"channel": "notifications",
                               "message": {"action": "new_notification", "notification_id": "x"}})
        );
        assert_eq!(e.sse, format!("id: 7\ndata: {}\n\n", &*e.frame));
    }
}
