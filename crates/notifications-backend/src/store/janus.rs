//! The janus-idp API's tables (`messages`, `users`, `groups`, `actions`), in janus's shape so
//! that a database janus used is read as it is.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::{Store, StoreResult};
use crate::db::sql_types::Uuid;
use crate::db::{Backend, Bind, DbError, Sql};

/// A new janus message and its targets, as the create route received them.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub id: uuid::Uuid,
    pub origin: String,
    pub title: String,
    pub message: Option<String>,
    pub topic: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS.sssZ`, the text janus stores and compares.
    pub created: String,
    pub is_system: bool,
    /// `namespace/name`, exactly as sent.
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// `(id, title, url)` in the order sent.
    pub actions: Vec<(uuid::Uuid, String, String)>,
}

/// Which messages a reader sees: janus's `messageScope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageScope {
    All,
    User,
    System,
}

/// The reader, and the filters list and count share.
#[derive(Clone, Debug)]
pub struct MessageFilter {
    /// `namespace/name`.
    pub user: String,
    /// The reader's groups (`namespace/name`), matched against `groups` rows.
    pub groups: Vec<String>,
    pub scope: MessageScope,
    /// A LIKE pattern fragment: `%` and `_` keep their wildcard meaning, as in janus.
    pub contains_text: Option<String>,
    /// Canonical `…sssZ` text: only messages created strictly after it.
    pub created_after: Option<String>,
    pub read: Option<bool>,
}

/// The sort columns janus accepts (`orderBy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderColumn {
    Title,
    Message,
    Created,
    Topic,
    Origin,
}

impl OrderColumn {
    fn column(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Message => "message",
            Self::Created => "created",
            Self::Topic => "topic",
            Self::Origin => "origin",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct MessageOrder {
    pub column: OrderColumn,
    pub ascending: bool,
}

/// `LIMIT`/`OFFSET`; `None` is every row.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// A message as a reader sees it.
#[derive(Debug, QueryableByName)]
pub struct MessageRow {
    #[diesel(sql_type = Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    pub created: Option<String>,
    #[diesel(sql_type = Bool)]
    pub is_system: bool,
    #[diesel(sql_type = Bool)]
    pub read_by_user: bool,
    #[diesel(sql_type = Text)]
    pub origin: String,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub message: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub topic: Option<String>,
}

#[derive(Debug, QueryableByName)]
pub struct ActionRow {
    #[diesel(sql_type = Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    pub message_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub title: String,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// `FROM messages m` joined with the reader's own `users` row, and the visibility and filter
/// conditions.
fn visible(filter: &MessageFilter) -> Sql {
    let mut sql =
        Sql::new(" FROM messages m LEFT JOIN users u ON u.message_id = m.id AND u.\"user\" = ");
    sql.bind(Bind::Text(filter.user.clone())).push(" WHERE ");
    push_scope(&mut sql, filter.scope, &filter.groups);
    if let Some(text) = &filter.contains_text {
        // Both sides fold through the database's `lower` (Unicode-aware on SQLite too), so the
        // match ignores case alike on both databases.
        let pattern = format!("%{text}%");
        sql.push(" AND (lower(m.title) LIKE lower(")
            .bind(Bind::Text(pattern.clone()))
            .push(") OR lower(m.message) LIKE lower(")
            .bind(Bind::Text(pattern))
            .push("))");
    }
    if let Some(after) = &filter.created_after {
        sql.push(" AND m.created > ")
            .bind(Bind::Text(after.clone()));
    }
    if let Some(read) = filter.read {
        sql.push(" AND COALESCE(u.read, ")
            .bind(Bind::Bool(false))
            .push(") = ")
            .bind(Bind::Bool(read));
    }
    sql
}

/// Janus's two branches: system messages, and messages targeted at the reader (a `users` row of
/// theirs, or a `groups` row of one of their groups).
fn push_scope(sql: &mut Sql, scope: MessageScope, groups: &[String]) {
    let system = |sql: &mut Sql| {
        sql.push("m.is_system = ").bind(Bind::Bool(true));
    };
    let targeted = |sql: &mut Sql| {
        sql.push("(m.is_system = ")
            .bind(Bind::Bool(false))
            .push(
                " AND (u.message_id IS NOT NULL OR EXISTS (SELECT 1 FROM \"groups\" g \
                 WHERE g.message_id = m.id AND g.\"group\" IN ",
            )
            .bind_list(groups.iter().cloned().map(Bind::Text))
            .push(")))");
    };
    match scope {
        MessageScope::System => system(sql),
        MessageScope::User => targeted(sql),
        MessageScope::All => {
            sql.push("(");
            system(sql);
            sql.push(" OR ");
            targeted(sql);
            sql.push(")");
        }
    }
}

/// Byte order on both databases (janus left it to each database's collation), NULLs last going
/// up and first going down, then creation, then the order of insertion (janus had no
/// tie-breaker), so that pages never overlap.
fn order_by(backend: Backend, order: MessageOrder) -> String {
    let direction = if order.ascending { "ASC" } else { "DESC" };
    let nulls = if order.ascending { "LAST" } else { "FIRST" };
    let collate = match backend {
        Backend::Postgres => "COLLATE \"C\"",
        Backend::Sqlite => "COLLATE BINARY",
    };
    format!(
        " ORDER BY m.{} {collate} {direction} NULLS {nulls}, m.created {collate} {direction}, {} {direction}",
        order.column.column(),
        physical_order(backend, "m"),
    )
}

/// The janus tables have no column that records insertion order; rows are never updated, so
/// their physical position does.
fn physical_order(backend: Backend, alias: &str) -> String {
    match backend {
        Backend::Postgres => format!("{alias}.ctid"),
        Backend::Sqlite => format!("{alias}.rowid"),
    }
}

impl Store {
    /// Stores a message with its targets and actions in one transaction: a duplicate target
    /// breaks a primary key and nothing is stored.
    pub async fn janus_create(&self, message: NewMessage) -> StoreResult<()> {
        self.db()
            .write(move |conn| {
                let mut insert = Sql::new(
                    "INSERT INTO messages (id, origin, created, title, message, topic, \
                     is_system) VALUES (",
                );
                insert
                    .bind(Bind::Uuid(message.id))
                    .push(", ")
                    .bind(Bind::Text(message.origin))
                    .push(", ")
                    .bind(Bind::Text(message.created))
                    .push(", ")
                    .bind(Bind::Text(message.title))
                    .push(", ")
                    .bind(Bind::OptText(message.message))
                    .push(", ")
                    .bind(Bind::OptText(message.topic))
                    .push(", ")
                    .bind(Bind::Bool(message.is_system))
                    .push(")");
                execute(conn, insert)?;
                for user in message.users {
                    let mut sql =
                        Sql::new("INSERT INTO users (message_id, \"user\", read) VALUES (");
                    sql.bind(Bind::Uuid(message.id))
                        .push(", ")
                        .bind(Bind::Text(user))
                        .push(", ")
                        .bind(Bind::Bool(false))
                        .push(")");
                    execute(conn, sql)?;
                }
                for group in message.groups {
                    let mut sql =
                        Sql::new("INSERT INTO \"groups\" (message_id, \"group\") VALUES (");
                    sql.bind(Bind::Uuid(message.id))
                        .push(", ")
                        .bind(Bind::Text(group))
                        .push(")");
                    execute(conn, sql)?;
                }
                for (id, title, url) in message.actions {
                    let mut sql =
                        Sql::new("INSERT INTO actions (id, message_id, url, title) VALUES (");
                    sql.bind(Bind::Uuid(id))
                        .push(", ")
                        .bind(Bind::Uuid(message.id))
                        .push(", ")
                        .bind(Bind::Text(url))
                        .push(", ")
                        .bind(Bind::Text(title))
                        .push(")");
                    execute(conn, sql)?;
                }
                Ok::<_, DbError>(())
            })
            .await
    }

    /// The reader's messages, ordered and paged.
    pub async fn janus_list(
        &self,
        filter: MessageFilter,
        order: MessageOrder,
        page: Option<Page>,
    ) -> StoreResult<Vec<MessageRow>> {
        let backend = self.db().backend();
        self.db()
            .run(move |conn| {
                let mut sql = Sql::new("SELECT m.id, m.created, m.is_system, COALESCE(u.read, ");
                sql.bind(Bind::Bool(false))
                    .push(") AS read_by_user, m.origin, m.title, m.message, m.topic")
                    .append(&visible(&filter))
                    .push(&order_by(backend, order));
                if let Some(page) = page {
                    sql.limit(page.limit)
                        .push(" OFFSET ")
                        .bind(Bind::BigInt(page.offset));
                }
                Ok(sql.load::<MessageRow>(conn)?)
            })
            .await
    }

    /// How many messages the reader's filters give, without paging.
    pub async fn janus_count(&self, filter: MessageFilter) -> StoreResult<i64> {
        self.db()
            .run(move |conn| {
                let mut sql = Sql::new("SELECT COUNT(*) AS count");
                sql.append(&visible(&filter));
                let rows = sql.load::<CountRow>(conn)?;
                Ok(rows.first().map_or(0, |r| r.count))
            })
            .await
    }

    /// The actions of these messages, each message's in the order they were stored.
    pub async fn janus_actions(&self, ids: Vec<uuid::Uuid>) -> StoreResult<Vec<ActionRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.db().backend();
        self.db()
            .run(move |conn| {
                let mut sql =
                    Sql::new("SELECT id, message_id, url, title FROM actions WHERE message_id IN ");
                sql.bind_list(ids.into_iter().map(Bind::Uuid));
                // `actions` has no column that orders it (janus's shape): the physical order of
                // this insert-only table is the order of insertion.
                sql.push(match backend {
                    Backend::Postgres => " ORDER BY ctid",
                    Backend::Sqlite => " ORDER BY rowid",
                });
                Ok(sql.load::<ActionRow>(conn)?)
            })
            .await
    }

    /// Whether the reader sees this message in any scope.
    pub async fn janus_is_visible(
        &self,
        id: uuid::Uuid,
        user: String,
        groups: Vec<String>,
    ) -> StoreResult<bool> {
        let filter = MessageFilter {
            user,
            groups,
            scope: MessageScope::All,
            contains_text: None,
            created_after: None,
            read: None,
        };
        self.db()
            .run(move |conn| {
                let mut sql = Sql::new("SELECT COUNT(*) AS count");
                sql.append(&visible(&filter))
                    .push(" AND m.id = ")
                    .bind(Bind::Uuid(id));
                let rows = sql.load::<CountRow>(conn)?;
                Ok(rows.first().is_some_and(|r| r.count > 0))
            })
            .await
    }

    /// Marks a message read or unread for the user, in one statement.
    pub async fn janus_mark_read(
        &self,
        id: uuid::Uuid,
        user: String,
        read: bool,
    ) -> StoreResult<()> {
        self.db()
            .write(move |conn| {
                let mut sql = Sql::new("INSERT INTO users (message_id, \"user\", read) VALUES (");
                sql.bind(Bind::Uuid(id))
                    .push(", ")
                    .bind(Bind::Text(user))
                    .push(", ")
                    .bind(Bind::Bool(read))
                    .push(
                        ") ON CONFLICT (message_id, \"user\") DO UPDATE SET read = excluded.read",
                    );
                execute(conn, sql)
            })
            .await
    }
}

fn execute(conn: &mut crate::db::DbConnection, sql: Sql) -> Result<(), DbError> {
    sql.execute(conn)?;
    Ok(())
}
