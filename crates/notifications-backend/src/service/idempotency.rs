//! Idempotent sends (beyond upstream): a send with an `Idempotency-Key` is made once per origin
//! and key for 24 hours; a repeated request gets the first answer again, and another request
//! under a used key is refused.

use notifications_common::NotificationSendOptions;
use sha2::{Digest, Sha256};

use super::outcome::SendOutcome;
use crate::db::DbError;
use crate::error::Error;
use crate::store::{Answer, IdempotentSend, Recorded, StoredNotification};

/// The longest key accepted (the column's width).
pub const MAX_KEY_LENGTH: usize = 255;

/// What a send answers: what it stored, or under a key, the recorded answer.
#[derive(Debug)]
pub enum SendAnswer {
    /// A send without a key.
    Sent(Vec<SendOutcome>),
    /// A send with a key: the answer recorded for it; `replayed` when an earlier request with
    /// this key made it (nothing was sent now).
    Recorded { answer: Answer, replayed: bool },
}

/// Checks a key and ties it to the request it comes with.
pub fn keyed(key: &str, options: &NotificationSendOptions) -> Result<IdempotentSend, Error> {
    // Visible ASCII only: keys are echoed in logs and compared byte for byte.
    if key.is_empty() || key.len() > MAX_KEY_LENGTH || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(format!(
            "Invalid Idempotency-Key: 1 to {MAX_KEY_LENGTH} visible ASCII characters are required"
        )));
    }
    // The request as parsed, not its bytes: the same send serialised differently (key order,
    // spacing) is the same request. Metadata maps serialise with sorted keys.
    let canonical =
        serde_json::to_vec(options).map_err(|e| Error::internal("send options as JSON", e))?;
    Ok(IdempotentSend {
        key: key.to_owned(),
        request_hash: hex(&Sha256::digest(canonical)),
    })
}

/// The answer to a request whose key was used before: the recorded one, if it is the same
/// request.
pub fn replay(send: &IdempotentSend, recorded: Recorded) -> Result<SendAnswer, Error> {
    if recorded.request_hash != send.request_hash {
        return Err(Error::IdempotencyKeyReused(format!(
            "Idempotency-Key '{}' was already used with a different request; use a new key for a new send",
            send.key
        )));
    }
    Ok(SendAnswer::Recorded {
        answer: recorded.answer,
        replayed: true,
    })
}

/// The create route's answer (200, the JSON list), as it is recorded.
pub fn answer(stored: &[StoredNotification]) -> Result<Answer, DbError> {
    let outcomes: Vec<SendOutcome> = stored.iter().cloned().map(SendOutcome).collect();
    let body = serde_json::to_string(&outcomes)
        .map_err(|e| DbError::Task(format!("the answer as JSON: {e}")))?;
    Ok(Answer { status: 200, body })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use notifications_common::{NotificationPayload, NotificationRecipients};

    use super::*;

    fn options(title: &str) -> NotificationSendOptions {
        NotificationSendOptions {
            recipients: NotificationRecipients::Broadcast,
            payload: NotificationPayload {
                title: title.into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        for bad in ["", "with space", "tab\t", "ünicode", &"k".repeat(256)] {
            assert!(keyed(bad, &options("t")).is_err(), "{bad:?}");
        }
        assert!(keyed(&"k".repeat(255), &options("t")).is_ok());
    }

    #[test]
    fn the_hash_tells_requests_apart() {
        let a = keyed("k", &options("a")).unwrap();
        assert_eq!(
            a.request_hash,
            keyed("k", &options("a")).unwrap().request_hash
        );
        assert_ne!(
            a.request_hash,
            keyed("k", &options("b")).unwrap().request_hash
        );
        assert_eq!(a.request_hash.len(), 64);
    }
}
