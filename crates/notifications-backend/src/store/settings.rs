//! Stored notification settings: one row per (user, channel, origin[, topic]).

use std::collections::HashMap;

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Nullable, Text};
use notifications_common::UserRef;

use super::{Store, StoreResult};
use crate::db::{Bind, DbError, Sql};

/// One stored switch. `topic: None` is the origin-level switch.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct SettingRow {
    #[diesel(sql_type = Text)]
    pub channel: String,
    #[diesel(sql_type = Text)]
    pub origin: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub topic: Option<String>,
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
}

/// A switch with the user it belongs to, as a read of many users gives it.
#[derive(QueryableByName)]
struct UserSettingRow {
    #[diesel(sql_type = Text)]
    user_ref: String,
    #[diesel(embed)]
    row: SettingRow,
}

#[derive(QueryableByName)]
struct OriginRow {
    #[diesel(sql_type = Text)]
    origin: String,
}

#[derive(QueryableByName)]
struct TopicRow {
    #[diesel(sql_type = Text)]
    origin: String,
    #[diesel(sql_type = Text)]
    topic: String,
}

const COLUMNS: &str = "channel, origin, topic, enabled";

/// Users per `IN (...)` list when reading many users' settings at once: a 10,000-member group
/// is one query, within both databases' bind limits (SQLite 32,766; PostgreSQL 65,535).
const USERS_PER_QUERY: usize = 10_000;
/// Rows per multi-row INSERT of settings (five binds each), within both limits.
const ROWS_PER_INSERT: usize = 1_000;

impl Store {
    /// All of the user's stored switches, every channel.
    pub async fn settings_of(&self, user: &UserRef) -> StoreResult<Vec<SettingRow>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM user_settings WHERE user_ref = "
        ));
        sql.bind(Bind::Text(user.to_string())).push(" ORDER BY id");
        self.db
            .run(move |conn| sql.load(conn).map_err(DbError::from))
            .await
    }

    /// Replaces all of the user's switches with `rows`, atomically.
    pub async fn replace_settings(&self, user: &UserRef, rows: Vec<SettingRow>) -> StoreResult<()> {
        let user = user.as_str().to_owned();
        self.db
            .write(move |conn| {
                let mut delete = Sql::new("DELETE FROM user_settings WHERE user_ref = ");
                delete.bind(Bind::Text(user.clone()));
                delete.execute(conn)?;
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    let mut insert = Sql::new(&format!(
                        "INSERT INTO user_settings (user_ref, {COLUMNS}) VALUES "
                    ));
                    for (i, r) in chunk.iter().enumerate() {
                        if i > 0 {
                            insert.push(", ");
                        }
                        insert
                            .push("(")
                            .bind(Bind::Text(user.clone()))
                            .push(", ")
                            .bind(Bind::Text(r.channel.clone()))
                            .push(", ")
                            .bind(Bind::Text(r.origin.clone()))
                            .push(", ")
                            .bind(Bind::OptText(r.topic.clone()))
                            .push(", ")
                            .bind(Bind::Bool(r.enabled))
                            .push(")");
                    }
                    insert.execute(conn)?;
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
                    let mut sql = Sql::new(&format!(
                        "SELECT user_ref, {COLUMNS} FROM user_settings WHERE user_ref IN "
                    ));
                    sql.bind_list(chunk.iter().cloned().map(Bind::Text))
                        .push(" ORDER BY id");
                    for r in sql.load::<UserSettingRow>(conn)? {
                        out.entry(r.user_ref).or_default().push(r.row);
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
        user: &UserRef,
    ) -> StoreResult<(Vec<String>, Vec<(String, String)>)> {
        let mut origins = Sql::new("SELECT DISTINCT origin FROM notification WHERE user_ref = ");
        origins
            .bind(Bind::Text(user.to_string()))
            .push(" ORDER BY origin");
        let mut topics =
            Sql::new("SELECT DISTINCT origin, topic FROM notification WHERE user_ref = ");
        topics
            .bind(Bind::Text(user.to_string()))
            .push(" AND topic IS NOT NULL ORDER BY origin, topic");
        self.db
            .run(move |conn| {
                let origins = origins.load::<OriginRow>(conn)?;
                let topics = topics.load::<TopicRow>(conn)?;
                Ok::<_, DbError>((
                    origins.into_iter().map(|r| r.origin).collect(),
                    topics.into_iter().map(|r| (r.origin, r.topic)).collect(),
                ))
            })
            .await
    }
}
