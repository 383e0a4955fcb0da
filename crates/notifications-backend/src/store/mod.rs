//! All SQL lives here. Each submodule holds the statements for one concern; the service layer
//! above holds the rules.

mod deliveries;
mod janus;
mod list;
mod notifications;
mod retention;
mod rows;
mod settings;
mod slack;

use crate::db::{Db, DbError};

pub use deliveries::{DELIVERED, DELIVERY_CHANNEL, DeliveryRow, FAILED, Outcome, PENDING};
pub use janus::{
    ActionRow, MessageFilter, MessageOrder, MessageRow, MessageScope, NewMessage, OrderColumn, Page,
};
pub use list::ListFilters;
pub use notifications::{Recipient, SendContext, StoredNotification};
pub use settings::SettingRow;
pub use slack::{SLACK_TS_LIFETIME, SlackMessage};

/// The notifications storage, over either database.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

pub type StoreResult<T> = Result<T, DbError>;
