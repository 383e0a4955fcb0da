//! Delivery preferences (beyond upstream): checked before they are stored, each problem named by
//! its field, so that what is stored can always be applied.

use jiff::civil::Time;
use notifications_common::{DigestMode, MAX_QUIET_WINDOWS, NotificationPreferences, UserRef};

use super::NotificationsService;
use crate::error::Error;
use crate::schedule::{ZONES, parse_time};

/// The longest time zone text a refusal repeats.
const SHOWN_ZONE: usize = 64;

impl NotificationsService {
    /// The user's preferences; without saved ones, the operator's default digest in UTC.
    pub async fn preferences(&self, user: &UserRef) -> Result<NotificationPreferences, Error> {
        match self.inner.store.preferences_of(user).await? {
            None => Ok(self.inner.preferences.default_preferences()),
            Some(document) => serde_json::from_str(&document)
                .map_err(|e| Error::internal("the stored preferences do not parse", e)),
        }
    }

    /// Replaces the user's preferences, once checked; answers them as stored (the time zone
    /// under its canonical name).
    pub async fn save_preferences(
        &self,
        user: &UserRef,
        new: NotificationPreferences,
    ) -> Result<NotificationPreferences, Error> {
        let new = checked(new)?;
        if !self.inner.preferences.digests_enabled && new.digest.mode != DigestMode::Immediate {
            return Err(Error::invalid(
                "digest.mode: digests are turned off on this server; only immediate is available",
            ));
        }
        let document = serde_json::to_string(&new)
            .map_err(|e| Error::internal("the preferences as JSON", e))?;
        if self.inner.store.save_preferences(user, document).await? > 0 {
            // Deliveries put back: the local worker reads them under the new preferences.
            self.inner.deliveries_queued.notify_one();
        }
        Ok(new)
    }
}

fn checked(mut p: NotificationPreferences) -> Result<NotificationPreferences, Error> {
    p.time_zone = zone(&p.time_zone)?;
    check_digest(&p)?;
    check_windows(&mut p)?;
    Ok(p)
}

/// The zone's primary IANA name (`US/Eastern` is `America/New_York`), so that users in one zone
/// share one name. Names without one are refused: jiff also answers `Etc/Unknown` (a zone that
/// is no zone) and `Factory` (a placeholder) from the database.
fn zone(name: &str) -> Result<String, Error> {
    let primary = ZONES.get(name).ok().and_then(|zone| {
        zone.primary_iana_name()
            .filter(|primary| *primary != "Factory")
            .map(str::to_owned)
    });
    primary.ok_or_else(|| {
        let shown: String = name.chars().take(SHOWN_ZONE).collect();
        Error::invalid(format!(
            "timeZone: unknown time zone '{shown}'; expected an IANA name such as Europe/Paris"
        ))
    })
}

fn check_digest(p: &NotificationPreferences) -> Result<(), Error> {
    match (p.digest.mode, &p.digest.at) {
        (DigestMode::Daily, None) => Err(Error::invalid(
            "digest.at: required when digest.mode is daily (the local time, HH:MM)",
        )),
        (DigestMode::Daily, Some(at)) => local_time("digest.at", at).map(|_| ()),
        (_, Some(_)) => Err(Error::invalid("digest.at: only for digest.mode daily")),
        (_, None) => Ok(()),
    }
}

/// Each window's times and days; its days sorted, each once.
fn check_windows(p: &mut NotificationPreferences) -> Result<(), Error> {
    if p.quiet_hours.len() > MAX_QUIET_WINDOWS {
        return Err(Error::invalid(format!(
            "quietHours: at most {MAX_QUIET_WINDOWS} windows"
        )));
    }
    for (i, window) in p.quiet_hours.iter_mut().enumerate() {
        let field = format!("quietHours[{i}]");
        window.days.sort_unstable();
        window.days.dedup();
        if window.days.is_empty() {
            return Err(Error::invalid(format!(
                "{field}.days: name at least one day"
            )));
        }
        let start = local_time(&format!("{field}.start"), &window.start)?;
        let end = local_time(&format!("{field}.end"), &window.end)?;
        if start == end {
            return Err(Error::invalid(format!(
                "{field}: an empty window (it starts and ends at {})",
                window.start
            )));
        }
    }
    Ok(())
}

/// `HH:MM`, 24-hour.
fn local_time(field: &str, text: &str) -> Result<Time, Error> {
    let invalid = || {
        Error::invalid(format!(
            "{field}: expected a time as HH:MM, 00:00 to 23:59; got '{text}'"
        ))
    };
    parse_time(text).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use notifications_common::{DigestPreference, QuietWindow, Weekday};

    use super::*;

    fn prefs(f: &dyn Fn(&mut NotificationPreferences)) -> NotificationPreferences {
        let mut p = NotificationPreferences::default();
        f(&mut p);
        p
    }

    fn window(start: &str, end: &str) -> QuietWindow {
        QuietWindow {
            days: vec![Weekday::Mon],
            start: start.into(),
            end: end.into(),
        }
    }

    #[test]
    fn times_are_24_hour_hh_mm() {
        for ok in ["00:00", "07:30", "23:59"] {
            assert!(local_time("t", ok).is_ok(), "{ok}");
        }
        for bad in [
            "24:00", "7:30", "07:60", "07:3", "0730", "-1:00", "+7:30", "07:30:00", "",
        ] {
            let e = local_time("quietHours[0].start", bad)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("quietHours[0].start: expected"), "{bad}: {e}");
        }
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases = [
            (
                "timeZone: unknown",
                prefs(&|p| p.time_zone = "Mars/Olympus".into()),
            ),
            (
                "timeZone: unknown",
                prefs(&|p| p.time_zone = "../../etc/passwd".into()),
            ),
            (
                "digest.at: required",
                prefs(&|p| p.digest.mode = DigestMode::Daily),
            ),
            (
                "digest.at: only",
                prefs(&|p| {
                    p.digest = DigestPreference {
                        mode: DigestMode::Hourly,
                        at: Some("08:00".into()),
                    }
                }),
            ),
            (
                "quietHours[1]: an empty window",
                prefs(&|p| {
                    p.quiet_hours = vec![window("22:00", "07:00"), window("09:00", "09:00")]
                }),
            ),
            (
                "quietHours[0].end: expected",
                prefs(&|p| p.quiet_hours = vec![window("22:00", "7am")]),
            ),
            (
                "quietHours[0].days: name at least one day",
                prefs(&|p| {
                    p.quiet_hours = vec![QuietWindow {
                        days: vec![],
                        ..window("22:00", "07:00")
                    }]
                }),
            ),
        ];
        for (expected, p) in cases {
            let e = checked(p).unwrap_err().to_string();
            assert!(e.starts_with(expected), "{expected}: {e}");
        }
    }

    #[test]
    fn zones_are_stored_under_their_primary_name() {
        for (given, stored) in [
            ("europe/paris", "Europe/Paris"),
            ("US/Eastern", "America/New_York"),
            ("Asia/Calcutta", "Asia/Kolkata"),
            ("utc", "UTC"),
            ("Etc/GMT+3", "Etc/GMT+3"),
        ] {
            assert_eq!(zone(given).unwrap(), stored, "{given}");
        }
        for refused in ["Etc/Unknown", "Factory", "UTC+3", "", "/etc/localtime"] {
            assert!(zone(refused).is_err(), "{refused}");
        }
        let long = "x".repeat(10_000);
        assert!(zone(&long).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn days_are_kept_sorted_and_once() {
        let p = checked(prefs(&|p| {
            p.quiet_hours = vec![QuietWindow {
                days: vec![Weekday::Fri, Weekday::Mon, Weekday::Fri],
                ..window("22:00", "07:00")
            }]
        }))
        .unwrap();
        assert_eq!(p.quiet_hours[0].days, [Weekday::Mon, Weekday::Fri]);
    }

    #[test]
    fn the_schema_bounds_the_windows_as_the_check_does() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(NotificationPreferences::schema()).unwrap();
        assert_eq!(
            schema["properties"]["quietHours"]["maxItems"],
            MAX_QUIET_WINDOWS
        );
        let many =
            prefs(&|p| p.quiet_hours = vec![window("22:00", "07:00"); MAX_QUIET_WINDOWS + 1]);
        assert!(
            checked(many)
                .unwrap_err()
                .to_string()
                .starts_with("quietHours: at most")
        );
    }
}
