//! All SQL lives here. Each submodule holds the statements for one concern; the service layer
//! above holds the rules.

mod deliveries;
mod idempotency;
pub mod import;
mod inbox_count;
mod janus;
mod list;
mod notifications;
#[cfg(any(test, feature = "testing"))]
mod plan;
mod preferences;
mod retention;
mod rows;
mod send;
mod send_batch;
mod settings;
mod sign_in;
mod signal_events;
mod slack;

use crate::db::{Backend, Db, DbError};

#[cfg(feature = "testing")]
pub use deliveries::ClaimPlans;
pub use deliveries::{DELIVERY_CHANNEL, DeliveryRow, DeliveryStatus, Outcome, QueueCount};
pub use idempotency::{Answer, IdempotentSend, Recorded, Written};
pub use inbox_count::FOLD_INTERVAL;
pub use janus::{MessageFilter, MessageOrder, MessageScope, NewMessage, OrderColumn, Page};
#[cfg(feature = "testing")]
pub use list::ListFilters;
pub use send::{Recipient, SendContext, StoredNotification};
pub use settings::SettingRow;
pub use slack::SlackMessage;

/// The notifications storage, over either database.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// PostgreSQL only: plain sends of concurrent requests share transactions.
    batcher: Option<send_batch::SendBatcher>,
}

impl Store {
    pub fn new(db: Db) -> Self {
        let batcher = match db.backend() {
            Backend::Postgres => send_batch::SendBatcher::start(&db)
                .inspect_err(|e| {
                    // Every send then takes its own transaction: slower, as correct.
                    tracing::error!("could not start the send batcher's threads: {e}");
                })
                .ok(),
            Backend::Sqlite => None,
        };
        Self { db, batcher }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

pub type StoreResult<T> = Result<T, DbError>;

/// What a write stored, with the signals it recorded: to publish now that it has committed.
#[derive(Debug)]
pub struct Committed<T> {
    pub value: T,
    pub signals: Vec<crate::published_signal::PublishedSignal>,
}
