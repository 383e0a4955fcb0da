use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A point in time as the API shows it: UTC, millisecond precision, e.g. `2025-04-01T10:00:00.000Z`.
///
/// The value is truncated to whole milliseconds when created, so what a client reads back is exactly
/// what is stored and compares equal when sent again (`createdAfter=<created>` includes the row).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp {input:?}: expected an ISO 8601 date or date-time")]
pub struct TimestampParseError {
    input: String,
}

impl Timestamp {
    /// The last millisecond of the year 9999, UTC.
    const LATEST: Self = Self(time::macros::datetime!(9999-12-31 23:59:59.999 UTC));

    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// Converts to UTC and drops everything below a millisecond.
    ///
    /// Panics if the instant cannot be expressed in UTC (past the year 9999 once converted);
    /// values from outside come through [`Timestamp::parse`], which takes those as the latest.
    #[expect(clippy::expect_used, reason = "documented: panics out of range")]
    pub fn from_datetime(value: OffsetDateTime) -> Self {
        Self::checked_from_datetime(value).expect("an instant within the supported range")
    }

    fn checked_from_datetime(value: OffsetDateTime) -> Option<Self> {
        let utc = value.checked_to_offset(UtcOffset::UTC)?;
        let millis = utc.nanosecond() / 1_000_000 * 1_000_000;
        utc.replace_nanosecond(millis).ok().map(Self)
    }

    pub fn as_datetime(&self) -> OffsetDateTime {
        self.0
    }

    /// Parses what clients send as a date: an RFC 3339 date-time (any offset), a date-time without
    /// offset (read as UTC), or a bare date (midnight UTC). A valid date-time past the year 9999
    /// once in UTC (`9999-12-31T23:00:00-05:00`) is the latest instant there is.
    pub fn parse(input: &str) -> Result<Self, TimestampParseError> {
        // RFC 3339 requires an upper-case `T` and an offset; accept the common relaxed forms too.
        let normalized = input.trim().replacen(' ', "T", 1);
        let with_zone = match normalized.get(10..) {
            Some("") => format!("{normalized}T00:00:00Z"),
            Some(time) if !has_offset(time) => format!("{normalized}Z"),
            _ => normalized,
        };
        OffsetDateTime::parse(&with_zone, &Rfc3339)
            .ok()
            .map(|t| Self::checked_from_datetime(t).unwrap_or(Self::LATEST))
            .ok_or_else(|| TimestampParseError {
                input: input.to_owned(),
            })
    }
}

/// Whether the part after the date names an offset (a `-` there can only be one).
fn has_offset(time: &str) -> bool {
    time.ends_with(['Z', 'z']) || time.contains(['+', '-'])
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second(),
            d.millisecond()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(value: OffsetDateTime) -> Self {
        Self::from_datetime(value)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .examples(["2025-04-01T10:00:00.000Z"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_utc_milliseconds() {
        let t = Timestamp::parse("2025-04-01T12:00:00.123456+02:00").unwrap();
        assert_eq!(t.to_string(), "2025-04-01T10:00:00.123Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2025-04-01T10:00:00.123Z\""
        );
    }

    #[test]
    fn accepts_relaxed_forms() {
        assert_eq!(
            Timestamp::parse("2025-04-01").unwrap().to_string(),
            "2025-04-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::parse("2025-04-01T10:00:00").unwrap().to_string(),
            "2025-04-01T10:00:00.000Z"
        );
        assert_eq!(
            Timestamp::parse("2025-04-01 10:00:00.5")
                .unwrap()
                .to_string(),
            "2025-04-01T10:00:00.500Z"
        );
        assert_eq!(
            Timestamp::parse("2025-04-01T10:00:00-01:30")
                .unwrap()
                .to_string(),
            "2025-04-01T11:30:00.000Z"
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "notadate",
            "",
            "2025-13-01",
            "2025-04-01T25:00:00Z",
            "1700000000000",
            "2025-04-0é1",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn past_the_year_9999_is_the_latest_instant() {
        assert_eq!(
            Timestamp::parse("9999-12-31T23:59:59-01:00")
                .unwrap()
                .to_string(),
            "9999-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn round_trips_through_json() {
        let t = Timestamp::now();
        let back: Timestamp = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(t, back);
    }
}
