//! Stored delivery preferences: one JSON document per user, as `PUT /preferences` validated it.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use notifications_common::UserRef;

use time::OffsetDateTime;

use super::deliveries::release_held_query;
use super::{Store, StoreResult};
use crate::db::{Bind, DbError, Sql};

#[derive(QueryableByName)]
struct PreferencesRow {
    #[diesel(sql_type = Text)]
    preferences: String,
}

impl Store {
    /// The user's document, if they ever saved one.
    pub async fn preferences_of(&self, user: &UserRef) -> StoreResult<Option<String>> {
        let mut sql = Sql::new("SELECT preferences FROM user_preferences WHERE user_ref = ");
        sql.bind(Bind::Text(user.to_string()));
        self.db
            .run(move |conn| {
                let rows = sql.load::<PreferencesRow>(conn).map_err(DbError::from)?;
                Ok(rows.into_iter().next().map(|r| r.preferences))
            })
            .await
    }

    /// Replaces the user's document, and in the same transaction puts what the old one held
    /// (quiet hours, digests) back in the delivery queue, to be read again under the new one;
    /// returns how many deliveries it put back.
    pub async fn save_preferences(&self, user: &UserRef, document: String) -> StoreResult<usize> {
        let mut sql = Sql::new("INSERT INTO user_preferences (user_ref, preferences) VALUES (");
        sql.bind(Bind::Text(user.to_string()))
            .push(", ")
            .bind(Bind::Text(document))
            .push(") ON CONFLICT (user_ref) DO UPDATE SET preferences = excluded.preferences");
        let release = release_held_query(user, OffsetDateTime::now_utc());
        self.db
            .write(move |conn| {
                sql.execute(conn)?;
                Ok::<_, DbError>(release.execute(conn)?)
            })
            .await
    }
}
