//! When a user's deliveries may go (beyond upstream): their quiet hours and digest windows, read
//! in their own time zone from the bundled tz database.
//!
//! Local times that do not exist or exist twice (a DST change) are read as jiff's `Compatible`
//! rule, RFC 5545's: a time in a gap is taken as after the gap (02:30 on a spring-forward day
//! in Paris is 03:30), a time in an overlap as its first occurrence. Hourly digests go out at
//! each local top of the hour (for `Asia/Kolkata`, at :30 UTC), each window one real hour: a
//! local hour that happens twice (fall back) is two windows, one that is skipped none.

use std::sync::LazyLock;

use jiff::civil::{Date, Time, Weekday as CivilWeekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{RoundMode, ToSpan, Unit, ZonedRound};
use notifications_common::{
    DigestMode, NotificationPreferences, QuietWindow, Weekday, parse_local_time,
};
use time::OffsetDateTime;

use crate::config::PreferencesConfig;

/// The tz database compiled into the binary, named explicitly: `jiff::tz::db()` would read the
/// host's zoneinfo instead should any crate turn on jiff's `tzdb-zoneinfo`.
pub static ZONES: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// Quiet windows that follow each other are one quiet period up to this many windows.
const MAX_CHAINED_WINDOWS: usize = 64;

/// `HH:MM`, 24-hour, two digits each: the one spelling preferences and configuration take.
pub fn parse_time(text: &str) -> Option<Time> {
    let (hours, minutes) = parse_local_time(text)?;
    Time::new(i8::try_from(hours).ok()?, i8::try_from(minutes).ok()?, 0, 0).ok()
}

/// How mail is batched for one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Immediate,
    Hourly,
    Daily(Time),
}

/// One user's preferences, ready to answer "now?".
#[derive(Clone, Debug)]
pub struct Schedule {
    zone: TimeZone,
    digest: Digest,
    quiet: Vec<Window>,
}

#[derive(Clone, Debug)]
struct Window {
    days: Vec<CivilWeekday>,
    start: Time,
    end: Time,
}

impl Schedule {
    /// The schedule of a user who saved `stored` (or nothing: the operator's defaults), under
    /// the operator's `config` (digests may be off for everyone). Stored documents were checked
    /// when saved; a part that no longer reads (a zone dropped from the tz database) falls back
    /// to UTC, or is left out, with a warning, rather than holding mail forever.
    pub fn new(stored: Option<&NotificationPreferences>, config: &PreferencesConfig) -> Self {
        let defaults;
        let p = match stored {
            Some(p) => p,
            None => {
                defaults = config.default_preferences();
                &defaults
            }
        };
        let zone = ZONES.get(&p.time_zone).unwrap_or_else(|_| {
            tracing::warn!(zone = %p.time_zone, "a stored time zone is not in the tz database; UTC applies");
            TimeZone::UTC
        });
        let digest = match (p.digest.mode, p.digest.at.as_deref().and_then(parse_time)) {
            _ if !config.digests_enabled => Digest::Immediate,
            (DigestMode::Immediate, _) => Digest::Immediate,
            (DigestMode::Hourly, _) => Digest::Hourly,
            (DigestMode::Daily, Some(at)) => Digest::Daily(at),
            (mode, _) => {
                tracing::warn!(?mode, "a stored digest does not read; e-mail goes at once");
                Digest::Immediate
            }
        };
        let quiet = p
            .quiet_hours
            .iter()
            .filter_map(|w| {
                Window::read(w).or_else(|| {
                    tracing::warn!(window = ?w, "a stored quiet window does not read; left out");
                    None
                })
            })
            .collect();
        Self {
            zone,
            digest,
            quiet,
        }
    }

    /// When the digest window open at `now` closes: the next local top of the hour, or the next
    /// daily time, strictly after `now`. `None` when mail goes at once.
    pub fn digest_due(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let local = to_jiff(now)?.to_zoned(self.zone.clone());
        let due = match self.digest {
            Digest::Immediate => return None,
            Digest::Hourly => local
                .round(
                    ZonedRound::new()
                        .smallest(Unit::Hour)
                        .mode(RoundMode::Floor),
                )
                .ok()?
                .timestamp()
                .checked_add(1.hour())
                .ok()?,
            Digest::Daily(at) => {
                let today = self.instant(local.date(), at)?;
                if today > to_jiff(now)? {
                    today
                } else {
                    self.instant(local.date().tomorrow().ok()?, at)?
                }
            }
        };
        from_jiff(due)
    }

    /// When the quiet period `now` falls in ends (windows that meet or overlap are one period);
    /// `None` outside quiet hours.
    pub fn quiet_until(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let mut until = self.window_end(to_jiff(now)?)?;
        for _ in 0..MAX_CHAINED_WINDOWS {
            match self.window_end(until) {
                Some(later) if later > until => until = later,
                _ => break,
            }
        }
        from_jiff(until)
    }

    /// The latest end of the windows that hold `at`.
    fn window_end(&self, at: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let today = at.to_zoned(self.zone.clone()).date();
        let yesterday = today.yesterday().ok()?;
        let mut end = None;
        for window in &self.quiet {
            // A window that runs past midnight may have begun the day before.
            for day in [yesterday, today] {
                if !window.days.contains(&day.weekday()) {
                    continue;
                }
                let Some((from, to)) = self.bounds(window, day) else {
                    continue;
                };
                if from <= at && at < to && end.is_none_or(|e| to > e) {
                    end = Some(to);
                }
            }
        }
        end
    }

    /// The instants a window that starts on `day` begins and ends.
    fn bounds(&self, window: &Window, day: Date) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
        let end_day = if window.end > window.start {
            day
        } else {
            day.tomorrow().ok()?
        };
        Some((
            self.instant(day, window.start)?,
            self.instant(end_day, window.end)?,
        ))
    }

    /// `time` on `day` in the user's zone, under the `Compatible` rule.
    fn instant(&self, day: Date, time: Time) -> Option<jiff::Timestamp> {
        day.to_datetime(time)
            .to_zoned(self.zone.clone())
            .ok()
            .map(|z| z.timestamp())
    }

    /// `at` as the user reads it: `2027-03-28 09:00 CEST`.
    pub fn local_text(&self, at: OffsetDateTime) -> String {
        match to_jiff(at) {
            Some(at) => at
                .to_zoned(self.zone.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string(),
            None => at.to_string(),
        }
    }
}

impl Window {
    /// As `PUT /preferences` checks it: a window that starts and ends at once is none.
    fn read(w: &QuietWindow) -> Option<Self> {
        let (start, end) = (parse_time(&w.start)?, parse_time(&w.end)?);
        (start != end).then(|| Self {
            days: w.days.iter().filter_map(|d| civil_weekday(*d)).collect(),
            start,
            end,
        })
    }
}

fn civil_weekday(day: Weekday) -> Option<CivilWeekday> {
    Some(match day {
        Weekday::Mon => CivilWeekday::Monday,
        Weekday::Tue => CivilWeekday::Tuesday,
        Weekday::Wed => CivilWeekday::Wednesday,
        Weekday::Thu => CivilWeekday::Thursday,
        Weekday::Fri => CivilWeekday::Friday,
        Weekday::Sat => CivilWeekday::Saturday,
        Weekday::Sun => CivilWeekday::Sunday,
        _ => return None,
    })
}

/// `None` outside jiff's range (years -9999 to 9999), which no clock reaches.
fn to_jiff(at: OffsetDateTime) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()).ok()
}

fn from_jiff(at: jiff::Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond()).ok()
}

#[cfg(test)]
mod tests {
    use notifications_common::DigestPreference;
    use time::format_description::well_known::Rfc3339;

    use super::*;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    fn config() -> PreferencesConfig {
        PreferencesConfig::default()
    }

    fn schedule(zone: &str, mode: DigestMode, daily_at: Option<&str>) -> Schedule {
        let p = NotificationPreferences {
            digest: DigestPreference {
                mode,
                at: daily_at.map(str::to_owned),
            },
            time_zone: zone.into(),
            quiet_hours: vec![],
        };
        Schedule::new(Some(&p), &config())
    }

    fn quiet(zone: &str, windows: &[(&[Weekday], &str, &str)]) -> Schedule {
        let p = NotificationPreferences {
            time_zone: zone.into(),
            quiet_hours: windows
                .iter()
                .map(|(days, start, end)| QuietWindow {
                    days: days.to_vec(),
                    start: (*start).into(),
                    end: (*end).into(),
                })
                .collect(),
            ..NotificationPreferences::default()
        };
        Schedule::new(Some(&p), &config())
    }

    #[test]
    fn hourly_windows_close_at_each_local_top_of_the_hour() {
        let s = schedule("Europe/Paris", DigestMode::Hourly, None);
        assert_eq!(
            s.digest_due(at("2027-06-01T10:20:00Z")),
            Some(at("2027-06-01T11:00:00Z"))
        );
        // On the hour: the window that starts now closes an hour later.
        assert_eq!(
            s.digest_due(at("2027-06-01T11:00:00Z")),
            Some(at("2027-06-01T12:00:00Z"))
        );
        // Half-hour zones close at :30 UTC.
        let s = schedule("Asia/Kolkata", DigestMode::Hourly, None);
        assert_eq!(
            s.digest_due(at("2027-06-01T10:20:00Z")),
            Some(at("2027-06-01T10:30:00Z"))
        );
        // Across Paris' spring-forward (01:00 UTC, 02:00 CET -> 03:00 CEST): hours stay an
        // hour long.
        let s = schedule("Europe/Paris", DigestMode::Hourly, None);
        assert_eq!(
            s.digest_due(at("2027-03-28T00:59:00Z")),
            Some(at("2027-03-28T01:00:00Z"))
        );
        assert_eq!(
            s.digest_due(at("2027-03-28T01:00:00Z")),
            Some(at("2027-03-28T02:00:00Z"))
        );
    }

    #[test]
    fn daily_windows_close_at_the_local_time_across_dst() {
        let s = schedule("Europe/Paris", DigestMode::Daily, Some("08:00"));
        // Winter: 08:00 CET is 07:00 UTC; summer: 06:00 UTC.
        assert_eq!(
            s.digest_due(at("2027-03-27T12:00:00Z")),
            Some(at("2027-03-28T06:00:00Z"))
        );
        assert_eq!(
            s.digest_due(at("2027-03-27T06:30:00Z")),
            Some(at("2027-03-27T07:00:00Z"))
        );
        // At the time itself the next day's window is meant.
        assert_eq!(
            s.digest_due(at("2027-03-28T06:00:00Z")),
            Some(at("2027-03-29T06:00:00Z"))
        );
        // 02:30 does not exist on 2027-03-28 in Paris: taken as 03:30 CEST (01:30 UTC).
        let s = schedule("Europe/Paris", DigestMode::Daily, Some("02:30"));
        assert_eq!(
            s.digest_due(at("2027-03-27T12:00:00Z")),
            Some(at("2027-03-28T01:30:00Z"))
        );
        // 02:30 happens twice on 2027-10-31: the first (CEST, 00:30 UTC).
        assert_eq!(
            s.digest_due(at("2027-10-30T12:00:00Z")),
            Some(at("2027-10-31T00:30:00Z"))
        );
        assert_eq!(
            s.digest_due(at("2027-10-31T00:30:00Z")),
            Some(at("2027-11-01T01:30:00Z"))
        );
    }

    #[test]
    fn immediate_and_turned_off_digests_have_no_window() {
        let s = schedule("UTC", DigestMode::Immediate, None);
        assert_eq!(s.digest_due(at("2027-06-01T10:20:00Z")), None);
        let off = PreferencesConfig {
            digests_enabled: false,
            ..config()
        };
        let p = NotificationPreferences {
            digest: DigestPreference {
                mode: DigestMode::Hourly,
                at: None,
            },
            ..NotificationPreferences::default()
        };
        assert_eq!(Schedule::new(Some(&p), &off).digest, Digest::Immediate);
        // Users who saved nothing have the operator's default.
        let hourly = PreferencesConfig {
            default_digest_mode: DigestMode::Hourly,
            ..config()
        };
        assert_eq!(Schedule::new(None, &hourly).digest, Digest::Hourly);
    }

    #[test]
    fn quiet_hours_span_midnight_on_the_days_they_start() {
        // Weekdays 22:00-07:00 in New York (EDT, UTC-4, in June 2027).
        let weekdays = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        let s = quiet("America/New_York", &[(&weekdays, "22:00", "07:00")]);
        // Friday 2027-06-04 23:00 EDT: quiet until Saturday 07:00 EDT.
        assert_eq!(
            s.quiet_until(at("2027-06-05T03:00:00Z")),
            Some(at("2027-06-05T11:00:00Z"))
        );
        // Saturday 23:00: no window starts on Saturday.
        assert_eq!(s.quiet_until(at("2027-06-06T03:00:00Z")), None);
        // Monday 2027-06-07 06:59 EDT: Sunday's window would hold it, and Sunday has none.
        assert_eq!(s.quiet_until(at("2027-06-07T10:59:00Z")), None);
        // Tuesday 06:59: Monday's window.
        assert_eq!(
            s.quiet_until(at("2027-06-08T10:59:00Z")),
            Some(at("2027-06-08T11:00:00Z"))
        );
        // The end is not quiet.
        assert_eq!(s.quiet_until(at("2027-06-08T11:00:00Z")), None);
        // Windows that meet are one quiet period.
        let s = quiet(
            "UTC",
            &[
                (&[Weekday::Tue], "22:00", "07:00"),
                (&[Weekday::Wed], "07:00", "09:00"),
            ],
        );
        assert_eq!(
            s.quiet_until(at("2027-06-08T23:00:00Z")),
            Some(at("2027-06-09T09:00:00Z"))
        );
    }

    #[test]
    fn quiet_hours_across_a_dst_change() {
        // Saturday 2027-03-27 22:00 CET to Sunday 07:00 CEST: nine hours of clock, eight real.
        let s = quiet("Europe/Paris", &[(&[Weekday::Sat], "22:00", "07:00")]);
        assert_eq!(
            s.quiet_until(at("2027-03-27T21:00:00Z")),
            Some(at("2027-03-28T05:00:00Z"))
        );
        assert_eq!(s.quiet_until(at("2027-03-27T20:59:00Z")), None);
    }

    #[test]
    fn unreadable_parts_of_an_old_document_fall_back() {
        let p = NotificationPreferences {
            time_zone: "Gone/Zone".into(),
            quiet_hours: vec![QuietWindow {
                days: vec![Weekday::Mon],
                start: "9am".into(),
                end: "10:00".into(),
            }],
            ..NotificationPreferences::default()
        };
        let s = Schedule::new(Some(&p), &config());
        assert_eq!(s.quiet_until(at("2027-06-07T09:30:00Z")), None);
        assert_eq!(
            s.local_text(at("2027-06-07T09:30:00Z")),
            "2027-06-07 09:30 UTC"
        );
    }

    #[test]
    fn times_are_two_digit_hours_and_minutes() {
        assert_eq!(parse_time("07:05"), Some(Time::new(7, 5, 0, 0).unwrap()));
        for bad in ["7:05", "24:00", "07:60", "0705", "07:05:00", "+7:05", ""] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
