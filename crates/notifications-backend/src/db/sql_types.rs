//! SQL types that differ between the two databases but share one `schema.rs`.
//!
//! PostgreSQL gets its native `uuid`, `timestamptz` and `jsonb`; SQLite stores all three as text.
//! Each type converts through diesel's own PostgreSQL impls and through a fixed text form on
//! SQLite, and is registered with the `MultiBackend` that `#[derive(MultiConnection)]` generates.

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{self as diesel_types, HasSqlType};
use diesel::sqlite::{Sqlite, SqliteValue};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use super::connection::MultiBackend;

/// A UUID: `uuid` on PostgreSQL, hyphenated lower-case text on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Uuid;

/// An instant: `timestamptz` on PostgreSQL, fixed-width UTC RFC 3339 text on SQLite
/// (`2025-04-01T10:00:00.123000Z`), which sorts and compares correctly as text.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct UtcTimestamp;

/// A JSON document: `jsonb` on PostgreSQL, JSON text on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Jsonb;

/// Registers a portable SQL type with the generated `MultiBackend`, which dispatches to the
/// per-database impls below.
macro_rules! multi_backend_type {
    ($sql:ty => $rust:ty) => {
        impl HasSqlType<$sql> for MultiBackend {
            fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
                MultiBackend::lookup_sql_type::<$sql>(lookup)
            }
        }

        impl ToSql<$sql, MultiBackend> for $rust {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
                out.set_value((<$sql>::default(), self));
                Ok(IsNull::No)
            }
        }

        impl FromSql<$sql, MultiBackend> for $rust {
            fn from_sql(
                bytes: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
            ) -> deserialize::Result<Self> {
                bytes.from_sql::<Self, $sql>()
            }
        }
    };
}

multi_backend_type!(Uuid => uuid::Uuid);
multi_backend_type!(UtcTimestamp => OffsetDateTime);
multi_backend_type!(Jsonb => serde_json::Value);

// --- Uuid ---------------------------------------------------------------------------------------

impl ToSql<Uuid, Pg> for uuid::Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <uuid::Uuid as ToSql<diesel_types::Uuid, Pg>>::to_sql(self, out)
    }
}

impl FromSql<Uuid, Pg> for uuid::Uuid {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <uuid::Uuid as FromSql<diesel_types::Uuid, Pg>>::from_sql(bytes)
    }
}

impl ToSql<Uuid, Sqlite> for uuid::Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<Uuid, Sqlite> for uuid::Uuid {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel_types::Text, Sqlite>>::from_sql(bytes)?;
        Ok(uuid::Uuid::parse_str(&text)?)
    }
}

// --- UtcTimestamp --------------------------------------------------------------------------------

const SQLITE_TIMESTAMP: &[time::format_description::BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

impl ToSql<UtcTimestamp, Pg> for OffsetDateTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <OffsetDateTime as ToSql<diesel_types::Timestamptz, Pg>>::to_sql(self, out)
    }
}

impl FromSql<UtcTimestamp, Pg> for OffsetDateTime {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <OffsetDateTime as FromSql<diesel_types::Timestamptz, Pg>>::from_sql(bytes)
    }
}

impl ToSql<UtcTimestamp, Sqlite> for OffsetDateTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.to_offset(UtcOffset::UTC).format(SQLITE_TIMESTAMP)?);
        Ok(IsNull::No)
    }
}

impl FromSql<UtcTimestamp, Sqlite> for OffsetDateTime {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel_types::Text, Sqlite>>::from_sql(bytes)?;
        Ok(OffsetDateTime::parse(&text, &Rfc3339)?)
    }
}

// --- Jsonb --------------------------------------------------------------------------------------

impl ToSql<Jsonb, Pg> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <serde_json::Value as ToSql<diesel_types::Jsonb, Pg>>::to_sql(self, out)
    }
}

impl FromSql<Jsonb, Pg> for serde_json::Value {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<diesel_types::Jsonb, Pg>>::from_sql(bytes)
    }
}

impl ToSql<Jsonb, Sqlite> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(self)?);
        Ok(IsNull::No)
    }
}

impl FromSql<Jsonb, Sqlite> for serde_json::Value {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel_types::Text, Sqlite>>::from_sql(bytes)?;
        Ok(serde_json::from_str(&text)?)
    }
}
