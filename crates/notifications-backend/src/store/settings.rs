//! Stored notification settings: one row per (user, channel, origin[, topic]).

use std::collections::HashMap;

use diesel::prelude::*;

use super::{Store, StoreResult};
use crate::db::schema::{notification, user_settings};
use crate::db::{DbError, per_backend};

/// One stored switch. `topic: None` is the origin-level switch.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = user_settings)]
pub struct SettingRow {
    pub channel: String,
    pub origin: String,
    pub topic: Option<String>,
    pub enabled: bool,
}

#[derive(Insertable)]
#[diesel(table_name = user_settings)]
struct NewSettingRow<'a> {
    user_ref: &'a str,
    channel: &'a str,
    origin: &'a str,
    topic: Option<&'a str>,
    enabled: bool,
}

/// Users per `IN (...)` list when reading many users' settings at once: a 10,000-member group
/// is one query, within both databases' bind limits (SQLite 32,766; PostgreSQL 65,535).
const USERS_PER_QUERY: usize = 10_000;
/// Rows per multi-row INSERT of settings (five binds each), within both limits.
const ROWS_PER_INSERT: usize = 1_000;

impl Store {
    /// All of the user's stored switches, every channel.
    pub async fn settings_of(&self, user: &str) -> StoreResult<Vec<SettingRow>> {
        let user = user.to_owned();
        self.db
            .run(move |conn| {
                user_settings::table
                    .filter(user_settings::user_ref.eq(&user))
                    .order(user_settings::id)
                    .select(SettingRow::as_select())
                    .load(conn)
                    .map_err(DbError::from)
            })
            .await
    }

    /// Replaces all of the user's switches with `rows`, atomically.
    pub async fn replace_settings(&self, user: &str, rows: Vec<SettingRow>) -> StoreResult<()> {
        let user = user.to_owned();
        self.db
            .write(move |conn| {
                diesel::delete(user_settings::table.filter(user_settings::user_ref.eq(&user)))
                    .execute(conn)?;
                let new: Vec<NewSettingRow<'_>> = rows
                    .iter()
                    .map(|r| NewSettingRow {
                        user_ref: &user,
                        channel: &r.channel,
                        origin: &r.origin,
                        topic: r.topic.as_deref(),
                        enabled: r.enabled,
                    })
                    .collect();
                for chunk in new.chunks(ROWS_PER_INSERT) {
                    // diesel's multi-row INSERT is per database, not on the shared backend.
                    per_backend!(conn, |c| {
                        diesel::insert_into(user_settings::table)
                            .values(chunk)
                            .execute(c)
                    })?;
                }
                Ok::<_, DbError>(())
            })
            .await
    }

    /// The switches of many users, every channel (the Web channel and the processors' are
    /// checked from one read), in one query per 10,000 users.
    pub async fn users_settings(
        &self,
        users: Vec<String>,
    ) -> StoreResult<HashMap<String, Vec<SettingRow>>> {
        self.db
            .run(move |conn| {
                let mut out: HashMap<String, Vec<SettingRow>> = HashMap::new();
                for chunk in users.chunks(USERS_PER_QUERY) {
                    let rows: Vec<(String, SettingRow)> = user_settings::table
                        .filter(user_settings::user_ref.eq_any(chunk))
                        .order(user_settings::id)
                        .select((user_settings::user_ref, SettingRow::as_select()))
                        .load(conn)?;
                    for (user, row) in rows {
                        out.entry(user).or_default().push(row);
                    }
                }
                Ok::<_, DbError>(out)
            })
            .await
    }

    /// The distinct origins of the user's own notifications, and the distinct (origin, topic)
    /// pairs among them with a topic; both sorted.
    pub async fn origins_and_topics(
        &self,
        user: &str,
    ) -> StoreResult<(Vec<String>, Vec<(String, String)>)> {
        let user = user.to_owned();
        self.db
            .run(move |conn| {
                let origins = notification::table
                    .filter(notification::user_ref.eq(&user))
                    .select(notification::origin)
                    .distinct()
                    .order(notification::origin)
                    .load::<String>(conn)?;
                let topics = notification::table
                    .filter(notification::user_ref.eq(&user))
                    .filter(notification::topic.is_not_null())
                    .select((notification::origin, notification::topic.assume_not_null()))
                    .distinct()
                    .order((notification::origin, notification::topic))
                    .load::<(String, String)>(conn)?;
                Ok::<_, DbError>((origins, topics))
            })
            .await
    }
}
