//! `notifications.preferences`: what the operator decides about users' delivery preferences
//! (beyond upstream): whether digests exist, the digest of users who chose none, and whether
//! critical notifications wait for quiet hours and digests.

use notifications_common::{
    DigestMode, DigestPreference, NotificationPreferences, parse_local_time,
};
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::coerce::{Bool, default_from_fields, via, yes};

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct PreferencesConfig {
    /// `digests`: false sends every mail at once, whatever users chose (and `PUT /preferences`
    /// refuses another mode).
    #[serde(
        rename = "digests",
        default = "yes",
        deserialize_with = "via::<Bool, _>"
    )]
    pub digests_enabled: bool,
    /// `defaultDigest`: the digest of users who saved no preferences.
    #[serde(rename = "defaultDigest", default)]
    pub default_digest_mode: DigestMode,
    /// `defaultDigestAt`: their daily digest's time (`HH:MM`, UTC).
    #[serde(
        rename = "defaultDigestAt",
        default = "nine",
        deserialize_with = "local_time"
    )]
    pub default_digest_at: String,
    /// `criticalPassesThrough`: critical notifications go out at once, past quiet hours and
    /// digests.
    #[serde(default = "yes", deserialize_with = "via::<Bool, _>")]
    pub critical_passes_through: bool,
}

default_from_fields!(PreferencesConfig);

impl PreferencesConfig {
    /// What applies to a user who saved no preferences: the default digest (immediate when
    /// digests are off), in UTC, without quiet hours.
    pub fn default_preferences(&self) -> NotificationPreferences {
        let mode = if self.digests_enabled {
            self.default_digest_mode
        } else {
            DigestMode::Immediate
        };
        NotificationPreferences {
            digest: DigestPreference {
                mode,
                at: (mode == DigestMode::Daily).then(|| self.default_digest_at.clone()),
            },
            ..NotificationPreferences::default()
        }
    }
}

fn nine() -> String {
    "09:00".to_owned()
}

fn local_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    match parse_local_time(&text) {
        Some(_) => Ok(text),
        None => Err(de::Error::invalid_value(
            de::Unexpected::Str(&text),
            &"a time as HH:MM, 00:00 to 23:59",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_and_values() {
        let read = |yaml: &str| Config::from_yaml_str(yaml).map(|c| c.notifications.preferences);
        let defaults = read("").unwrap();
        assert_eq!(defaults, PreferencesConfig::default());
        assert!(defaults.digests_enabled && defaults.critical_passes_through);
        assert_eq!(defaults.default_digest_mode, DigestMode::Immediate);
        assert_eq!(
            read("notifications: {preferences: {digests: 'false', defaultDigest: daily, defaultDigestAt: '07:30', criticalPassesThrough: false}}")
                .unwrap(),
            PreferencesConfig {
                digests_enabled: false,
                default_digest_mode: DigestMode::Daily,
                default_digest_at: "07:30".into(),
                critical_passes_through: false,
            }
        );
        let e = read("notifications: {preferences: {defaultDigestAt: '7:30'}}").unwrap_err();
        assert!(e.to_string().contains("HH:MM"), "{e}");
        assert!(read("notifications: {preferences: {defaultDigest: weekly}}").is_err());
    }
}
