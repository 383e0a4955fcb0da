//! What a send answers for each notification it stored: shared by the send itself and by the
//! answer recorded under an `Idempotency-Key`.

use notifications_common::FreshNotification;
use serde::{Serialize, Serializer};

use crate::store::StoredNotification;

/// One element of the create answer: a new notification in upstream's in-memory shape, or a
/// notification a re-send with the same scope updated, as stored.
#[derive(Clone, Debug)]
pub struct SendOutcome(pub StoredNotification);

impl Serialize for SendOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.updated_existing {
            self.0.notification.serialize(serializer)
        } else {
            FreshNotification(&self.0.notification).serialize(serializer)
        }
    }
}
