//! The one way the store runs SQL: statements assembled as text with typed binds that render
//! as each database's own placeholders (`$1` on PostgreSQL, `?` on SQLite), run on either
//! database through [`Sql::execute`] and [`Sql::load`].

use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Nullable, Text, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, QueryableByName, RunQueryDsl};
use time::OffsetDateTime;

use super::connection::{DbConnection, per_backend};
use super::sql_types::{Jsonb, UtcTimestamp, Uuid};

/// A value bound into a [`Sql`] statement.
#[derive(Clone, Debug)]
pub enum Bind {
    Text(String),
    OptText(Option<String>),
    BigInt(i64),
    Bool(bool),
    Uuid(uuid::Uuid),
    Timestamp(OffsetDateTime),
    OptTimestamp(Option<OffsetDateTime>),
    OptJson(Option<serde_json::Value>),
}

impl Bind {
    #[cfg(any(test, feature = "testing"))]
    /// The type PostgreSQL is told the bind has (see the `ToSql` of each in `walk_ast`), and
    /// its value as a literal of that type.
    fn postgres_literal(&self) -> (&'static str, String) {
        // With `standard_conforming_strings` (on since PostgreSQL 9.1), doubling quotes is all
        // the quoting a string literal needs.
        fn quoted(text: &str) -> String {
            format!("'{}'", text.replace('\'', "''"))
        }
        fn or_null(value: Option<String>) -> String {
            value.unwrap_or_else(|| "NULL".to_owned())
        }
        let timestamp = |t: &OffsetDateTime| {
            quoted(
                &t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            )
        };
        match self {
            Bind::Text(v) => ("text", quoted(v)),
            Bind::OptText(v) => ("text", or_null(v.as_deref().map(quoted))),
            Bind::BigInt(v) => ("int8", v.to_string()),
            Bind::Bool(v) => ("bool", v.to_string()),
            Bind::Uuid(v) => ("uuid", quoted(&v.to_string())),
            Bind::Timestamp(v) => ("timestamptz", timestamp(v)),
            Bind::OptTimestamp(v) => ("timestamptz", or_null(v.as_ref().map(timestamp))),
            Bind::OptJson(v) => ("jsonb", or_null(v.as_ref().map(|j| quoted(&j.to_string())))),
        }
    }
}

#[derive(Clone, Debug)]
enum Part {
    Sql(String),
    Bind(Bind),
}

/// A statement built piece by piece; load it with [`RunQueryDsl`] into `QueryableByName` rows.
#[derive(Clone, Debug, Default)]
pub struct Sql {
    parts: Vec<Part>,
    /// Statements whose text varies with the input (IN lists) stay out of the prepared-statement
    /// cache, which would otherwise grow without bound.
    uncacheable: bool,
}

impl Sql {
    pub fn new(sql: &str) -> Self {
        let mut s = Self::default();
        s.push(sql);
        s
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        if let Some(Part::Sql(last)) = self.parts.last_mut() {
            last.push_str(sql);
        } else {
            self.parts.push(Part::Sql(sql.to_owned()));
        }
        self
    }

    pub fn bind(&mut self, value: Bind) -> &mut Self {
        debug_assert!(
            !matches!(self.parts.last(), Some(Part::Sql(s))
                if s.trim_end().to_ascii_uppercase().ends_with("LIMIT")),
            "a bare `LIMIT ?` is compiled again at every execution on SQLite: use Sql::limit"
        );
        self.parts.push(Part::Bind(value));
        self
    }

    /// ` LIMIT <n>`. SQLite (3.53) recompiles a statement whose LIMIT is a bare parameter every
    /// time it is bound again, which cost an inbox page a third of its time; an expression (`+?`,
    /// the same value on both databases) keeps the prepared statement.
    pub fn limit(&mut self, n: i64) -> &mut Self {
        self.push(" LIMIT +").bind(Bind::BigInt(n))
    }

    /// Keeps this statement out of the prepared-statement cache (its text varies with input).
    pub fn uncacheable(&mut self) -> &mut Self {
        self.uncacheable = true;
        self
    }

    /// `(?, ?, ...)` for a list of values; an empty list becomes `(NULL)`, which matches nothing.
    pub fn bind_list(&mut self, values: impl IntoIterator<Item = Bind>) -> &mut Self {
        self.uncacheable().push("(");
        let mut first = true;
        for value in values {
            if !first {
                self.push(", ");
            }
            first = false;
            self.bind(value);
        }
        if first {
            self.push("NULL");
        }
        self.push(")")
    }

    #[cfg(any(test, feature = "testing"))]
    /// The text with PostgreSQL's numbered placeholders, the type each bind is sent as, and
    /// each bind as a literal: for `PREPARE` and `EXECUTE`, which take a query and its values as
    /// text (an `EXECUTE`'s values cannot be binds of their own).
    pub fn to_postgres_text(&self) -> (String, Vec<&'static str>, Vec<String>) {
        let (mut text, mut types, mut values) = (String::new(), Vec::new(), Vec::new());
        for part in &self.parts {
            match part {
                Part::Sql(s) => text.push_str(s),
                Part::Bind(b) => {
                    let (ty, value) = b.postgres_literal();
                    types.push(ty);
                    values.push(value);
                    text.push_str(&format!("${}", values.len()));
                }
            }
        }
        (text, types, values)
    }

    /// Appends another statement's text and binds.
    pub fn append(&mut self, other: &Sql) -> &mut Self {
        self.uncacheable |= other.uncacheable;
        for part in &other.parts {
            match part {
                Part::Sql(s) => {
                    self.push(s);
                }
                Part::Bind(b) => {
                    self.bind(b.clone());
                }
            }
        }
        self
    }
}

impl QueryId for Sql {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Sql {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Sql {}

impl Sql {
    /// Runs the statement on whichever database `conn` is; returns the rows it changed.
    pub fn execute(self, conn: &mut DbConnection) -> QueryResult<usize> {
        per_backend!(conn, |c| RunQueryDsl::execute(self, c))
    }

    /// Runs the query on whichever database `conn` is; returns its rows.
    pub fn load<T>(self, conn: &mut DbConnection) -> QueryResult<Vec<T>>
    where
        T: QueryableByName<Pg> + QueryableByName<Sqlite> + 'static,
    {
        per_backend!(conn, |c| RunQueryDsl::load(self, c))
    }
}

impl<DB> QueryFragment<DB> for Sql
where
    DB: Backend
        + HasSqlType<Text>
        + HasSqlType<BigInt>
        + HasSqlType<Bool>
        + HasSqlType<Uuid>
        + HasSqlType<UtcTimestamp>
        + HasSqlType<Jsonb>,
    String: ToSql<Text, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    i64: ToSql<BigInt, DB>,
    bool: ToSql<Bool, DB>,
    uuid::Uuid: ToSql<Uuid, DB>,
    OffsetDateTime: ToSql<UtcTimestamp, DB>,
    Option<OffsetDateTime>: ToSql<Nullable<UtcTimestamp>, DB>,
    Option<serde_json::Value>: ToSql<Nullable<Jsonb>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if self.uncacheable {
            out.unsafe_to_cache_prepared();
        }
        for part in &self.parts {
            match part {
                Part::Sql(s) => out.push_sql(s),
                Part::Bind(Bind::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                Part::Bind(Bind::OptText(v)) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Part::Bind(Bind::BigInt(v)) => out.push_bind_param::<BigInt, _>(v)?,
                Part::Bind(Bind::Bool(v)) => out.push_bind_param::<Bool, _>(v)?,
                Part::Bind(Bind::Uuid(v)) => out.push_bind_param::<Uuid, _>(v)?,
                Part::Bind(Bind::Timestamp(v)) => out.push_bind_param::<UtcTimestamp, _>(v)?,
                Part::Bind(Bind::OptTimestamp(v)) => {
                    out.push_bind_param::<Nullable<UtcTimestamp>, _>(v)?
                }
                Part::Bind(Bind::OptJson(v)) => out.push_bind_param::<Nullable<Jsonb>, _>(v)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_text_numbers_placeholders_and_quotes_literals() {
        let mut sql = Sql::new("SELECT * FROM n WHERE user_ref = ");
        sql.bind(Bind::Text("user:default/o'brien".into()))
            .push(" AND topic IS NOT DISTINCT FROM ")
            .bind(Bind::OptText(None))
            .push(" OFFSET ")
            .bind(Bind::BigInt(20));
        let (text, types, values) = sql.to_postgres_text();
        assert_eq!(
            text,
            "SELECT * FROM n WHERE user_ref = $1 AND topic IS NOT DISTINCT FROM $2 OFFSET $3"
        );
        assert_eq!(types, ["text", "text", "int8"]);
        assert_eq!(values, ["'user:default/o''brien'", "NULL", "20"]);
    }

    #[test]
    fn a_limit_is_an_expression_not_a_bare_parameter() {
        let mut sql = Sql::new("SELECT id FROM n ORDER BY id");
        sql.limit(20);
        assert_eq!(
            sql.to_postgres_text().0,
            "SELECT id FROM n ORDER BY id LIMIT +$1"
        );
    }

    #[test]
    #[should_panic(expected = "use Sql::limit")]
    #[cfg(debug_assertions)]
    fn a_bare_limit_parameter_is_caught_in_tests() {
        Sql::new("SELECT id FROM n LIMIT ").bind(Bind::BigInt(20));
    }
}
