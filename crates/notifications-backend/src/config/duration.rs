//! Durations as Backstage's config writes them (`readDurationFromConfig`): `HumanDuration` maps,
//! ISO 8601 strings (`P30D`) and the `ms` package's strings (`30d`, `1.5h`, `1000`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Unexpected, Visitor, value::MapAccessDeserializer};
use time::{Date, Month, OffsetDateTime, Time};

use super::coerce::{Coerced, UInt};

/// A duration as configured (Backstage's `HumanDuration`), calendar units included; a retention
/// (`notifications.retention`), for one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConfigDuration {
    pub years: u32,
    pub months: u32,
    pub weeks: u32,
    pub days: u32,
    pub hours: u32,
    pub minutes: u32,
    pub seconds: u32,
    pub milliseconds: u32,
}

impl ConfigDuration {
    /// Backstage's default retention.
    pub fn one_year() -> Self {
        Self {
            years: 1,
            ..Self::default()
        }
    }

    /// `now` minus this duration. Years and months move the calendar date, clamping the day to
    /// the target month's length as Luxon does (Mar 31 − 1 month = Feb 28 or 29); the other units
    /// have fixed lengths. A cutoff before the earliest representable date saturates there,
    /// which keeps everything.
    pub fn cutoff(&self, now: OffsetDateTime) -> OffsetDateTime {
        self.checked_cutoff(now).unwrap_or_else(|| {
            OffsetDateTime::new_in_offset(Date::MIN, Time::MIDNIGHT, now.offset())
        })
    }

    fn checked_cutoff(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let months_back = i64::from(self.years) * 12 + i64::from(self.months);
        let month_index = i64::from(now.year()) * 12 + i64::from(u8::from(now.month()) - 1);
        let target = month_index - months_back;
        let year = i32::try_from(target.div_euclid(12)).ok()?;
        let month = Month::try_from(u8::try_from(target.rem_euclid(12) + 1).ok()?).ok()?;
        let day = now.day().min(time::util::days_in_month(month, year));
        let date = Date::from_calendar_date(year, month, day).ok()?;
        now.replace_date(date).checked_sub(self.fixed_part())
    }

    /// Weeks and smaller units (u32 each, so the sum cannot overflow).
    fn fixed_part(&self) -> time::Duration {
        time::Duration::weeks(self.weeks.into())
            + time::Duration::days(self.days.into())
            + time::Duration::hours(self.hours.into())
            + time::Duration::minutes(self.minutes.into())
            + time::Duration::seconds(self.seconds.into())
            + time::Duration::milliseconds(self.milliseconds.into())
    }

    /// The length of a duration without calendar units.
    fn to_std(&self) -> Option<std::time::Duration> {
        if self.years != 0 || self.months != 0 {
            return None;
        }
        std::time::Duration::try_from(self.fixed_part()).ok()
    }

    /// A fixed length split into days and smaller units; `None` beyond `u32::MAX` days.
    fn from_millis(millis: u64) -> Option<Self> {
        const SECOND: u64 = 1000;
        const MINUTE: u64 = 60 * SECOND;
        const HOUR: u64 = 60 * MINUTE;
        const DAY: u64 = 24 * HOUR;
        // The parts below days are less than 1000, so the casts are lossless.
        Some(Self {
            days: u32::try_from(millis / DAY).ok()?,
            hours: (millis % DAY / HOUR) as u32,
            minutes: (millis % HOUR / MINUTE) as u32,
            seconds: (millis % MINUTE / SECOND) as u32,
            milliseconds: (millis % SECOND) as u32,
            ..Self::default()
        })
    }

    fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// Parses a fixed-length duration given as an ISO 8601 string (`PT1H`, `P30D`) or like the `ms`
/// package (`1h`, `30d`, `1000`); months and years, which have no fixed length, are refused.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    parse(text)?
        .to_std()
        .ok_or_else(|| format!("invalid duration {text:?}: {NOT_FIXED}"))
}

const NOT_FIXED: &str = "months and years have no fixed length here; use weeks or smaller units";

/// Parses a duration string as Backstage does: ISO 8601 when it starts with `P`, otherwise the
/// `ms` package's format.
fn parse(input: &str) -> Result<ConfigDuration, String> {
    let text = input.trim();
    let parsed = if text.starts_with('P') {
        parse_iso(text)
    } else {
        parse_ms(text)
    };
    parsed.map_err(|reason| format!("invalid duration {input:?}: {reason}"))
}

/// `P[nY][nM][nW][nD][T[nH][nM][nS]]`, integers only. Weeks may be combined with other units,
/// as Luxon (which Backstage uses) allows.
fn parse_iso(text: &str) -> Result<ConfigDuration, String> {
    let body = &text[1..];
    let (date, time) = match body.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (body, None),
    };
    let mut duration = ConfigDuration::default();
    let mut any = iso_components(date, &['Y', 'M', 'W', 'D'], |unit, n| match unit {
        'Y' => duration.years = n,
        'M' => duration.months = n,
        'W' => duration.weeks = n,
        _ => duration.days = n,
    })?;
    if let Some(time) = time {
        if time.is_empty() {
            return Err("expected hours, minutes or seconds after T".into());
        }
        any |= iso_components(time, &['H', 'M', 'S'], |unit, n| match unit {
            'H' => duration.hours = n,
            'M' => duration.minutes = n,
            _ => duration.seconds = n,
        })?;
    }
    if any {
        Ok(duration)
    } else {
        Err("an ISO 8601 duration needs at least one component, as in \"P30D\"".into())
    }
}

/// Reads `<number><unit>` pairs whose units appear in the order of `units`; returns whether
/// there were any.
fn iso_components(
    mut text: &str,
    mut units: &[char],
    mut set: impl FnMut(char, u32),
) -> Result<bool, String> {
    let any = !text.is_empty();
    while !text.is_empty() {
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, rest) = text.split_at(digits);
        let Some(unit) = rest.chars().next() else {
            return Err(format!("{number} needs a unit designator"));
        };
        if unit == '.' || unit == ',' {
            return Err("fractional values are not supported in ISO 8601 durations".into());
        }
        if number.is_empty() {
            return Err(format!("expected a number before {unit:?}"));
        }
        let Some(position) = units.iter().position(|&u| u == unit) else {
            return Err(format!("unexpected {unit:?}"));
        };
        units = units.get(position + 1..).unwrap_or_default();
        set(
            unit,
            number
                .parse()
                .map_err(|_| format!("{number} is too large"))?,
        );
        text = rest.get(unit.len_utf8()..).unwrap_or_default();
    }
    Ok(any)
}

/// The `ms` package's format: a number (`10`, `1.5`, `.5`), optional spaces and an optional
/// case-insensitive unit; milliseconds without a unit. A year is 365.25 days, as there.
fn parse_ms(text: &str) -> Result<ConfigDuration, String> {
    const HINT: &str = "expected an ISO 8601 duration like \"P30D\" or a number with an optional unit like \"30d\", \"12h\" or \"1000ms\"";
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    if number.starts_with('-') {
        return Err("durations must not be negative".into());
    }
    let well_formed = number.ends_with(|c: char| c.is_ascii_digit())
        && number.matches('.').count() <= 1
        && !number.contains('-');
    let factor = unit_millis(&unit.trim_start_matches(' ').to_ascii_lowercase());
    let (Some(factor), true) = (factor, well_formed) else {
        return Err(HINT.into());
    };
    let value: f64 = number.parse().map_err(|_| HINT)?;
    // Float to integer casts saturate; `from_millis` rejects what is too large.
    ConfigDuration::from_millis((value * factor).round() as u64).ok_or_else(|| "too large".into())
}

fn unit_millis(unit: &str) -> Option<f64> {
    const SECOND: f64 = 1000.0;
    const MINUTE: f64 = 60.0 * SECOND;
    const HOUR: f64 = 60.0 * MINUTE;
    const DAY: f64 = 24.0 * HOUR;
    Some(match unit {
        "" | "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => MINUTE,
        "h" | "hr" | "hrs" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => 7.0 * DAY,
        "y" | "yr" | "yrs" | "year" | "years" => 365.25 * DAY,
        _ => return None,
    })
}

/// Reads any duration form; `None` stands for `false` when `allow_false`.
struct DurationVisitor {
    allow_false: bool,
}

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Option<ConfigDuration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.allow_false {
            f.write_str("false or ")?;
        }
        f.write_str(
            "a duration: a map like {days: 30}, an ISO 8601 string like \"P30D\" or a string like \"30d\"",
        )
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        if self.allow_false && !v {
            Ok(None)
        } else {
            Err(E::invalid_value(Unexpected::Bool(v), &self))
        }
    }

    /// A bare number is milliseconds, as in the `ms` package.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        ConfigDuration::from_millis(v)
            .map(Some)
            .ok_or_else(|| E::custom("duration too large"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        // Substitution yields strings, so `${RETENTION:-false}` must read as the boolean.
        if self.allow_false {
            for b in [false, true] {
                if v.trim().eq_ignore_ascii_case(&b.to_string()) {
                    return self.visit_bool(b);
                }
            }
        }
        parse(v).map(Some).map_err(E::custom)
    }

    /// Backstage's `HumanDuration` map. Unlike the rest of the configuration, unknown keys are
    /// errors here, as in Backstage: `{day: 30}` must not pass as an empty duration.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        const UNITS: &[&str] = &[
            "years",
            "months",
            "weeks",
            "days",
            "hours",
            "minutes",
            "seconds",
            "milliseconds",
        ];
        let parts = BTreeMap::<String, UInt<u32>>::deserialize(MapAccessDeserializer::new(map))?;
        if parts.is_empty() {
            return Err(de::Error::custom(format!(
                "expected at least one of {}",
                UNITS.join(", ")
            )));
        }
        let mut d = ConfigDuration::default();
        for (unit, UInt(n)) in parts {
            *match unit.as_str() {
                "years" => &mut d.years,
                "months" => &mut d.months,
                "weeks" => &mut d.weeks,
                "days" => &mut d.days,
                "hours" => &mut d.hours,
                "minutes" => &mut d.minutes,
                "seconds" => &mut d.seconds,
                "milliseconds" => &mut d.milliseconds,
                _ => return Err(de::Error::unknown_field(&unit, UNITS)),
            } = n;
        }
        Ok(Some(d))
    }
}

/// `notifications.retention`: `false` (keep forever) or a duration longer than zero.
pub(super) struct RetentionSetting(pub Option<ConfigDuration>);

impl<'de> Deserialize<'de> for RetentionSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_any(DurationVisitor { allow_false: true })? {
            Some(retention) if retention.is_zero() => Err(de::Error::custom(
                "the retention must be longer than zero (use false to keep notifications forever)",
            )),
            retention => Ok(Self(retention)),
        }
    }
}

/// A duration without calendar units (`notifications.throttleInterval`).
pub(super) struct FixedDuration(pub std::time::Duration);

impl<'de> Deserialize<'de> for FixedDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor { allow_false: false })?
            .and_then(|duration| duration.to_std())
            .map(Self)
            .ok_or_else(|| de::Error::custom(NOT_FIXED))
    }
}

/// A [`FixedDuration`] raised to at least `MS` milliseconds: shorter intervals would spin, and
/// shorter timeouts fail every attempt at once.
pub(super) struct AtLeast<const MS: u64>(pub std::time::Duration);

impl<'de, const MS: u64> Deserialize<'de> for AtLeast<MS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let duration = FixedDuration::deserialize(deserializer)?.0;
        Ok(Self(duration.max(std::time::Duration::from_millis(MS))))
    }
}

impl<const MS: u64> Coerced for AtLeast<MS> {
    type Value = std::time::Duration;
    fn value(self) -> Self::Value {
        self.0
    }
}

super::coerce::coerced!(
    FixedDuration => std::time::Duration,
    RetentionSetting => Option<ConfigDuration>,
);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn r(f: impl FnOnce(&mut ConfigDuration)) -> ConfigDuration {
        let mut retention = ConfigDuration::default();
        f(&mut retention);
        retention
    }

    #[test]
    fn iso_8601() {
        assert_eq!(parse("P30D"), Ok(r(|r| r.days = 30)));
        assert_eq!(parse("P1Y2M"), Ok(r(|r| (r.years, r.months) = (1, 2))));
        assert_eq!(parse("PT12H"), Ok(r(|r| r.hours = 12)));
        assert_eq!(parse("P2W"), Ok(r(|r| r.weeks = 2)));
        assert_eq!(
            parse(" P1Y2M3W4DT5H6M7S "),
            Ok(ConfigDuration {
                years: 1,
                months: 2,
                weeks: 3,
                days: 4,
                hours: 5,
                minutes: 6,
                seconds: 7,
                milliseconds: 0
            })
        );
        for (bad, reason) in [
            ("P", "at least one component"),
            ("PT", "after T"),
            ("P1.5D", "fractional"),
            ("PT0,5S", "fractional"),
            ("P1D2Y", "unexpected 'Y'"),
            ("P1H", "unexpected 'H'"),
            ("PD", "number before 'D'"),
            ("P1", "needs a unit"),
            ("P99999999999D", "too large"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(reason), "{bad}: {err}");
            assert!(
                err.starts_with(&format!("invalid duration {bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn ms_strings() {
        assert_eq!(parse("30d"), Ok(r(|r| r.days = 30)));
        assert_eq!(parse("2 days"), Ok(r(|r| r.days = 2)));
        assert_eq!(parse("12h"), Ok(r(|r| r.hours = 12)));
        assert_eq!(parse("90m"), Ok(r(|r| (r.hours, r.minutes) = (1, 30))));
        assert_eq!(parse("45s"), Ok(r(|r| r.seconds = 45)));
        assert_eq!(parse("1000ms"), Ok(r(|r| r.seconds = 1)));
        assert_eq!(parse("1.5h"), Ok(r(|r| (r.hours, r.minutes) = (1, 30))));
        assert_eq!(parse(".5s"), Ok(r(|r| r.milliseconds = 500)));
        assert_eq!(
            parse("2500"),
            Ok(r(|r| (r.seconds, r.milliseconds) = (2, 500)))
        );
        assert_eq!(parse("2W"), Ok(r(|r| r.days = 14)));
        assert_eq!(parse("1 Year"), Ok(r(|r| (r.days, r.hours) = (365, 6))));
        assert_eq!(parse("3 hrs"), Ok(r(|r| r.hours = 3)));
        assert_eq!(parse("5 MINS"), Ok(r(|r| r.minutes = 5)));
        for bad in [
            "",
            "abc",
            "1.",
            "1.2.3",
            "10 fortnights",
            "d",
            "1-2d",
            "p30d",
        ] {
            assert!(
                parse(bad).unwrap_err().contains("expected an ISO 8601"),
                "{bad}"
            );
        }
        assert!(parse("-1d").unwrap_err().contains("negative"));
        assert!(parse("99999999999y").unwrap_err().contains("too large"));
    }

    fn retention(value: serde_json::Value) -> Result<Option<ConfigDuration>, String> {
        RetentionSetting::deserialize(value)
            .map(|r| r.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn retention_forms() {
        assert_eq!(retention(json!(false)), Ok(None));
        assert_eq!(retention(json!("false")), Ok(None));
        assert_eq!(retention(json!({"days": 30})), Ok(Some(r(|r| r.days = 30))));
        assert_eq!(
            retention(json!({"months": "6", "hours": 1})),
            Ok(Some(r(|r| (r.months, r.hours) = (6, 1))))
        );
        assert_eq!(
            retention(json!("P1Y")),
            Ok(Some(ConfigDuration::one_year()))
        );
        assert_eq!(retention(json!("30d")), Ok(Some(r(|r| r.days = 30))));
        assert_eq!(retention(json!(86_400_000)), Ok(Some(r(|r| r.days = 1))));

        assert!(
            retention(json!(true))
                .unwrap_err()
                .contains("expected false or a duration")
        );
        assert!(
            retention(json!("TRUE"))
                .unwrap_err()
                .contains("expected false or a duration")
        );
        assert!(
            retention(json!({}))
                .unwrap_err()
                .contains("at least one of years")
        );
        assert!(
            retention(json!({"day": 3}))
                .unwrap_err()
                .contains("unknown field `day`")
        );
        assert!(retention(json!({"days": -3})).is_err());
        assert!(
            retention(json!({"days": 0}))
                .unwrap_err()
                .contains("longer than zero")
        );
        assert!(
            retention(json!("P0D"))
                .unwrap_err()
                .contains("longer than zero")
        );
        assert!(
            retention(json!("0ms"))
                .unwrap_err()
                .contains("longer than zero")
        );
        assert!(
            retention(json!("soon"))
                .unwrap_err()
                .contains("invalid duration \"soon\"")
        );
    }

    fn fixed(value: serde_json::Value) -> Result<std::time::Duration, String> {
        FixedDuration::deserialize(value)
            .map(|d| d.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn fixed_durations() {
        use std::time::Duration;
        assert_eq!(fixed(json!("50ms")), Ok(Duration::from_millis(50)));
        assert_eq!(fixed(json!(50)), Ok(Duration::from_millis(50)));
        assert_eq!(fixed(json!("PT1M")), Ok(Duration::from_secs(60)));
        assert_eq!(
            fixed(json!({"weeks": 1, "milliseconds": 1})),
            Ok(Duration::from_millis(604_800_001))
        );
        assert_eq!(fixed(json!("0")), Ok(Duration::ZERO));
        assert!(
            fixed(json!("P1M"))
                .unwrap_err()
                .contains("months and years")
        );
        assert!(
            fixed(json!({"years": 1}))
                .unwrap_err()
                .contains("months and years")
        );
        assert!(
            fixed(json!("1y")).is_ok(),
            "ms-style years are a fixed 365.25 days"
        );
        assert!(fixed(json!(false)).is_err());
    }

    #[test]
    fn public_parser_gives_fixed_durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("P1D"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert!(
            parse_duration("P1M")
                .unwrap_err()
                .starts_with("invalid duration \"P1M\": months and years")
        );
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .starts_with("invalid duration \"soon\"")
        );
    }

    #[test]
    fn cutoff_uses_calendar_arithmetic_for_months_and_years() {
        let month = r(|r| r.months = 1);
        assert_eq!(
            month.cutoff(datetime!(2025-03-31 10:00 UTC)),
            datetime!(2025-02-28 10:00 UTC)
        );
        assert_eq!(
            month.cutoff(datetime!(2024-03-31 10:00 UTC)),
            datetime!(2024-02-29 10:00 UTC)
        );
        assert_eq!(
            month.cutoff(datetime!(2025-01-15 00:00 UTC)),
            datetime!(2024-12-15 00:00 UTC)
        );
        assert_eq!(
            ConfigDuration::one_year().cutoff(datetime!(2024-02-29 12:30 +02:00)),
            datetime!(2023-02-28 12:30 +02:00)
        );
        assert_eq!(
            r(|r| (r.years, r.months) = (1, 13)).cutoff(datetime!(2025-06-10 00:00 UTC)),
            datetime!(2023-05-10 00:00 UTC)
        );
        // Calendar units first, then the fixed ones.
        assert_eq!(
            r(|r| (r.months, r.days, r.hours) = (1, 1, 1)).cutoff(datetime!(2025-03-31 00:30 UTC)),
            datetime!(2025-02-26 23:30 UTC)
        );
        assert_eq!(
            r(|r| (r.weeks, r.milliseconds) = (1, 5)).cutoff(datetime!(2025-01-08 00:00 UTC)),
            datetime!(2024-12-31 23:59:59.995 UTC)
        );
    }

    #[test]
    fn cutoff_saturates() {
        let forever = r(|r| r.years = u32::MAX);
        let cutoff = forever.cutoff(datetime!(2025-01-01 00:00 UTC));
        assert_eq!(cutoff.date(), Date::MIN);
    }
}
