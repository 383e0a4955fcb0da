//! What an event-stream client missed while it was away.

use notifications_common::NOTIFICATIONS_CHANNEL;

use super::NotificationsService;
use crate::error::Error;
use crate::signals::PublishedSignal;

/// Events replayed to one reconnecting client at most; one further behind starts afresh.
const REPLAY_MAX: i64 = 1000;
/// Events recorded this long before the last one seen are replayed too: ids are not delivered
/// in id order (other instances' events arrive later; concurrent commits finish in any order),
/// so a lower id may still have been on its way. A client may see such an event twice; the
/// notifications signals only tell it to refetch.
const REORDER_SLACK: time::Duration = time::Duration::seconds(2);

/// The events a client missed after the one it saw last.
#[derive(Debug)]
pub struct Missed {
    pub events: Vec<PublishedSignal>,
    /// Some may be gone: older than the replay window, or more than a replay holds.
    pub incomplete: bool,
}

impl NotificationsService {
    /// The notifications-channel events for `refs` (and everyone) after the event `after`.
    pub async fn missed_signals(&self, refs: Vec<String>, after: i64) -> Result<Missed, Error> {
        let store = &self.inner.store;
        let (oldest, _) = store.signal_event_bounds().await?;
        let since = store
            .signal_event_created(after)
            .await?
            .map(|seen| seen - REORDER_SLACK);
        let mut events = store
            .signal_events_after(after, since, Some(refs), REPLAY_MAX + 1)
            .await?;
        // The last one the client saw is not news to it.
        events.retain(|e| e.id != after);
        let overflow = events.len() as i64 > REPLAY_MAX;
        events.truncate(REPLAY_MAX as usize);
        events.retain(|e| e.channel == NOTIFICATIONS_CHANNEL);
        // Ids have gaps (rolled-back writes), so this errs on the side of "incomplete".
        let pruned = oldest.is_some_and(|oldest| oldest > after.saturating_add(1));
        Ok(Missed {
            events,
            incomplete: overflow || pruned,
        })
    }
}
