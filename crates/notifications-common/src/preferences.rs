//! A user's delivery preferences (beyond upstream): how e-mail reaches them (at once or in
//! digests) and when nothing but the inbox should (quiet hours), in their own time zone.
//! `GET/PUT /preferences`; upstream's `/settings` (which channels, origins and topics) is apart.

use serde::{Deserialize, Serialize};

/// The most quiet-hour windows a user may keep (the schema's `maxItems` says the same).
pub const MAX_QUIET_WINDOWS: usize = 50;

/// `GET/PUT /preferences`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationPreferences {
    #[serde(default)]
    pub digest: DigestPreference,
    /// An IANA time zone name (`Europe/Paris`), in which `digest.at` and the quiet hours are
    /// read; `UTC` when not given. Stored under its primary name (`US/Eastern` as
    /// `America/New_York`).
    #[serde(default = "utc")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub time_zone: String,
    /// When e-mail, Slack and webhook deliveries to the user should wait; none when empty.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub quiet_hours: Vec<QuietWindow>,
}

/// A local time as preferences spell it, `HH:MM` (24-hour, two digits each): its hours and
/// minutes, `None` for any other spelling.
pub fn parse_local_time(text: &str) -> Option<(u8, u8)> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |s: &str| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u8>().ok())
            .flatten()
    };
    let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
    (hours < 24 && minutes < 60).then_some((hours, minutes))
}

fn utc() -> String {
    "UTC".to_owned()
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        Self {
            digest: DigestPreference::default(),
            time_zone: utc(),
            quiet_hours: Vec::new(),
        }
    }
}

/// How e-mail deliveries reach the user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DigestPreference {
    pub mode: DigestMode,
    /// `daily` only, and required there: the local time (`HH:MM`, 24-hour) the digest goes out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")
    )]
    pub at: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum DigestMode {
    /// One e-mail per notification, as upstream.
    #[default]
    Immediate,
    /// One e-mail an hour with what came in it.
    Hourly,
    /// One e-mail a day, at `at`.
    Daily,
}

/// From `start` to `end` (local `HH:MM`, 24-hour) on each of `days`; a window whose end is not
/// after its start runs past midnight into the next day (`22:00`–`07:00`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuietWindow {
    /// The days the window starts on; at least one.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub days: Vec<Weekday>,
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")
    )]
    pub start: String,
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")
    )]
    pub end: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_and_writes_the_documented_shape() {
        let doc = json!({
            "digest": {"mode": "daily", "at": "08:30"},
            "timeZone": "Europe/Paris",
            "quietHours": [{"days": ["mon", "fri"], "start": "22:00", "end": "07:00"}]
        });
        let p: NotificationPreferences = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(p.digest.mode, DigestMode::Daily);
        assert_eq!(p.quiet_hours[0].days, [Weekday::Mon, Weekday::Fri]);
        assert_eq!(serde_json::to_value(&p).unwrap(), doc);
    }

    #[test]
    fn missing_parts_take_their_defaults_and_unknown_keys_are_refused() {
        let p: NotificationPreferences = serde_json::from_value(json!({})).unwrap();
        assert_eq!(p, NotificationPreferences::default());
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"digest": {"mode": "immediate"}, "timeZone": "UTC", "quietHours": []})
        );
        let e = serde_json::from_value::<NotificationPreferences>(json!({"timezone": "UTC"}));
        assert!(e.unwrap_err().to_string().contains("timezone"));
    }
}
