//! What the crate's integration tests and fuzz targets reach beyond the public API: storage,
//! tokens and the parsers behind private handlers. Compiled only with the `testing` feature,
//! which the crate's dev-dependency on itself (and the fuzz crate) turn on; the paths mirror
//! the modules they come from. Not an API: hidden, and free to change.

pub mod auth {
    pub use crate::auth::{Authenticator, Principal, SigningKeys, TokenKind, mint};
}

pub mod catalog {
    pub use crate::catalog::RemoteCatalog;
}

pub mod cleaner {
    pub use crate::cleaner::{run_once, spawn, spawn_key_sweeper};
}

pub mod clock {
    pub use crate::clock::{Clock, ManualClock};
}

pub mod inbox {
    pub use crate::inbox::Sessions;
}

pub mod db {
    pub use crate::db::{Db, DbConnection, DbError, PgSession, PoolOptions, Target, migrations};
}

pub mod error {
    pub use crate::error::Error;
}

pub mod http {
    pub use crate::http::{list_options, read_all_filters, topics_options};
}

pub mod processors {
    pub mod email {
        pub use crate::processors::email::CHANNEL;
    }
}

pub mod service {
    pub mod janus {
        pub use crate::service::janus::iso_millis;
    }
    pub mod link {
        pub use crate::service::link::{resolve_link, validate_link};
    }
}

pub mod signals {
    pub use crate::signals::PublishedSignal;
}

pub mod store {
    pub use crate::store::{
        ClaimPlans, Committed, DeliveryRow, DeliveryStatus, ListFilters, Recipient, SendContext,
        Store, StoredNotification,
    };
}
