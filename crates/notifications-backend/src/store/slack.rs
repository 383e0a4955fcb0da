//! What the Slack processor keeps: the messages it posted per (origin, scope, target), so that
//! a scope re-send edits the message, and deliveries it queues itself (channel messages of
//! `process_options`).

use diesel::QueryableByName;
use diesel::sql_types::Text;
use time::OffsetDateTime;

use super::{Store, StoreResult};
use crate::db::{Bind, DbError, Sql};

/// Messages older than this are neither edited nor kept (upstream purges them daily).
pub const SLACK_TS_LIFETIME: time::Duration = time::Duration::hours(24);

/// A posted message: where Slack put it and its `ts`.
#[derive(Clone, Debug, PartialEq, Eq, QueryableByName)]
pub struct SlackMessage {
    #[diesel(sql_type = Text)]
    pub message_channel: String,
    #[diesel(sql_type = Text)]
    pub ts: String,
}

impl Store {
    /// The message posted for (origin, scope) to `channel` within the last 24 hours.
    pub async fn slack_message(
        &self,
        origin: &str,
        scope: &str,
        channel: &str,
    ) -> StoreResult<Option<SlackMessage>> {
        let mut sql =
            Sql::new("SELECT message_channel, ts FROM slack_message_timestamp WHERE origin = ");
        sql.bind(Bind::Text(origin.to_owned()))
            .push(" AND scope = ")
            .bind(Bind::Text(scope.to_owned()))
            .push(" AND channel = ")
            .bind(Bind::Text(channel.to_owned()))
            .push(" AND created_at > ")
            .bind(Bind::Timestamp(
                OffsetDateTime::now_utc() - SLACK_TS_LIFETIME,
            ));
        self.db
            .run(move |conn| {
                let mut rows: Vec<SlackMessage> = sql.load::<SlackMessage>(conn)?;
                Ok::<_, DbError>(rows.pop())
            })
            .await
    }

    /// Records (or replaces) the message posted for (origin, scope) to `channel`, and purges
    /// records past their lifetime.
    pub async fn save_slack_message(
        &self,
        origin: &str,
        scope: &str,
        channel: &str,
        message: SlackMessage,
    ) -> StoreResult<()> {
        let now = OffsetDateTime::now_utc();
        let mut upsert = Sql::new(
            "INSERT INTO slack_message_timestamp (origin, scope, channel, message_channel, ts, \
             created_at) VALUES (",
        );
        upsert
            .bind(Bind::Text(origin.to_owned()))
            .push(", ")
            .bind(Bind::Text(scope.to_owned()))
            .push(", ")
            .bind(Bind::Text(channel.to_owned()))
            .push(", ")
            .bind(Bind::Text(message.message_channel))
            .push(", ")
            .bind(Bind::Text(message.ts))
            .push(", ")
            .bind(Bind::Timestamp(now))
            .push(
                ") ON CONFLICT (origin, scope, channel) DO UPDATE SET \
                 message_channel = excluded.message_channel, ts = excluded.ts, \
                 created_at = excluded.created_at",
            );
        let mut purge = Sql::new("DELETE FROM slack_message_timestamp WHERE created_at <= ");
        purge.bind(Bind::Timestamp(now - SLACK_TS_LIFETIME));
        self.db
            .write(move |conn| {
                upsert.execute(conn)?;
                purge.execute(conn)?;
                Ok::<_, DbError>(())
            })
            .await
    }
}
