//! Sign-in links used: each signs in once.

use notifications_common::UserRef;
use time::OffsetDateTime;

use super::{Store, StoreResult};
use crate::db::{Bind, DbError, Sql};

/// How long after its expiry a used link's record is kept.
const FORGET_AFTER: time::Duration = time::Duration::hours(1);

impl Store {
    /// Records the link `id` (valid until `expires`) as used by `user`; false when it was used
    /// before. Links long past their expiry are forgotten on the way: no instance takes them
    /// (links are read without leeway; the margin covers clocks that differ).
    pub async fn use_sign_in_link(
        &self,
        id: String,
        user: &UserRef,
        expires: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut forget = Sql::new("DELETE FROM sign_in_link WHERE expires < ");
        forget.bind(Bind::Timestamp(OffsetDateTime::now_utc() - FORGET_AFTER));
        let mut record = Sql::new("INSERT INTO sign_in_link (id, user_ref, expires) VALUES (");
        record
            .bind(Bind::Text(id))
            .push(", ")
            .bind(Bind::Text(user.to_string()))
            .push(", ")
            .bind(Bind::Timestamp(expires))
            .push(") ON CONFLICT (id) DO NOTHING");
        self.db
            .write(move |conn| {
                forget.execute(conn)?;
                Ok::<_, DbError>(record.execute(conn)? == 1)
            })
            .await
    }
}
