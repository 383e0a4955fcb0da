//! Upstream's rows checked against what this service stores: a row that breaks a rule is
//! refused with the reason (the first one found), never stored half-way.

use std::str::FromStr;

use notifications_common::bounds::MAX_SHORT_TEXT;
use notifications_common::{NotificationSeverity, Timestamp, UserRef};
use time::OffsetDateTime;
use uuid::Uuid;

use super::source::{
    UpstreamBroadcast, UpstreamContent, UpstreamMark, UpstreamNotification, UpstreamSetting,
};
use crate::store::import::{
    ImportedBroadcast, ImportedContent, ImportedMark, ImportedNotification, ImportedSetting,
};

/// Why a row is not imported.
pub type Reason = String;

pub fn notification(row: UpstreamNotification) -> Result<ImportedNotification, Reason> {
    Ok(ImportedNotification {
        id: id("id", &row.id)?,
        user: user(row.user.as_deref())?,
        content: content(row.content)?,
        read: optional_instant("read", row.read.as_deref())?,
        saved: optional_instant("saved", row.saved.as_deref())?,
    })
}

/// A broadcast with its marks: refused as a whole when one of them is.
pub fn broadcast(
    row: UpstreamBroadcast,
    marks: Vec<UpstreamMark>,
) -> Result<ImportedBroadcast, Reason> {
    let id = id("id", &row.id)?;
    let content = content(row.content)?;
    let marks = marks
        .into_iter()
        .map(|m| {
            let who = m.user.clone().unwrap_or_default();
            mark(m).map_err(|reason| format!("its mark for {who:?}: {reason}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(ImportedBroadcast { id, content, marks })
}

fn mark(m: UpstreamMark) -> Result<ImportedMark, Reason> {
    Ok(ImportedMark {
        user: user(m.user.as_deref())?,
        read: optional_instant("read", m.read.as_deref())?,
        saved: optional_instant("saved", m.saved.as_deref())?,
    })
}

pub fn setting(row: UpstreamSetting) -> Result<ImportedSetting, Reason> {
    let enabled = match row.enabled.as_deref().map(str::trim) {
        Some("1" | "true" | "t") => true,
        Some("0" | "false" | "f") => false,
        other => return Err(format!("enabled: not a boolean: {other:?}")),
    };
    Ok(ImportedSetting {
        user: user(row.user.as_deref())?,
        channel: required_short("channel", row.channel)?,
        origin: required_short("origin", row.origin)?,
        topic: optional_short("topic", row.topic)?,
        enabled,
    })
}

fn content(c: UpstreamContent) -> Result<ImportedContent, Reason> {
    let severity = c.severity.as_deref().unwrap_or("normal");
    let severity = NotificationSeverity::from_str(&severity.to_lowercase())
        .map_err(|e| format!("severity: {e}"))?;
    Ok(ImportedContent {
        title: required_short("title", c.title)?,
        description: optional_text("description", c.description)?,
        severity: severity.as_str().to_owned(),
        link: optional_text("link", c.link)?,
        origin: required_short("origin", c.origin)?,
        scope: optional_short("scope", c.scope)?,
        topic: optional_short("topic", c.topic)?,
        icon: optional_short("icon", c.icon)?,
        created: instant(
            "created",
            c.created.as_deref().ok_or("created: missing".to_owned())?,
        )?,
        updated: optional_instant("updated", c.updated.as_deref())?,
    })
}

fn id(field: &str, raw: &str) -> Result<Uuid, Reason> {
    Uuid::parse_str(raw.trim()).map_err(|e| format!("{field}: not a UUID ({e})"))
}

/// A user entity ref, in the canonical form this service keys users by.
fn user(raw: Option<&str>) -> Result<String, Reason> {
    let raw = raw.ok_or("user: missing")?;
    let user = UserRef::from_str(raw).map_err(|e| format!("user: {e}"))?;
    short("user", user.as_str())?;
    Ok(user.into())
}

fn required_short(field: &str, value: Option<String>) -> Result<String, Reason> {
    let value = value.ok_or_else(|| format!("{field}: missing"))?;
    short(field, &value)?;
    Ok(value)
}

fn optional_short(field: &str, value: Option<String>) -> Result<Option<String>, Reason> {
    if let Some(v) = &value {
        short(field, v)?;
    }
    Ok(value)
}

fn optional_text(field: &str, value: Option<String>) -> Result<Option<String>, Reason> {
    if let Some(v) = &value {
        no_nul(field, v)?;
    }
    Ok(value)
}

/// The `varchar(255)` columns' bound, which upstream's SQLite did not enforce.
fn short(field: &str, value: &str) -> Result<(), Reason> {
    no_nul(field, value)?;
    let chars = value.chars().count();
    if chars > MAX_SHORT_TEXT {
        return Err(format!(
            "{field}: too long ({chars} characters, at most {MAX_SHORT_TEXT})"
        ));
    }
    Ok(())
}

fn no_nul(field: &str, value: &str) -> Result<(), Reason> {
    if value.contains('\0') {
        return Err(format!("{field}: contains a NUL character"));
    }
    Ok(())
}

fn optional_instant(field: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, Reason> {
    raw.map(|r| instant(field, r)).transpose()
}

/// A time as the source gave it: milliseconds since the epoch (how knex stores a `Date` in
/// SQLite) or an ISO 8601 text (PostgreSQL's, read in UTC; SQLite's `CURRENT_TIMESTAMP`, UTC).
fn instant(field: &str, raw: &str) -> Result<OffsetDateTime, Reason> {
    let raw = raw.trim();
    let parsed = match raw.parse::<i64>() {
        Ok(ms) => OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .map(Timestamp::from_datetime),
        Err(_) => Timestamp::parse(raw).ok(),
    };
    parsed
        .map(|t| t.as_datetime())
        .ok_or_else(|| format!("{field}: not a time: {raw:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_as_knex_stored_them() {
        let ms = instant("created", "1733400000123").unwrap();
        assert_eq!(
            Timestamp::from_datetime(ms).to_string(),
            "2024-12-05T12:00:00.123Z"
        );
        let pg = instant("created", "2024-12-05T12:00:00.123456").unwrap();
        assert_eq!(
            Timestamp::from_datetime(pg).to_string(),
            "2024-12-05T12:00:00.123Z"
        );
        let now = instant("created", "2024-12-05 12:00:00").unwrap();
        assert_eq!(
            Timestamp::from_datetime(now).to_string(),
            "2024-12-05T12:00:00.000Z"
        );
        assert!(
            instant("created", "yesterday")
                .unwrap_err()
                .contains("not a time")
        );
    }

    #[test]
    fn users_are_canonical_and_must_be_users() {
        assert_eq!(
            user(Some("User:Default/Alice")).unwrap(),
            "user:default/alice"
        );
        assert!(user(Some("alice")).unwrap_err().starts_with("user: "));
        assert!(
            user(Some("group:default/team"))
                .unwrap_err()
                .contains("not a user")
        );
        let long = format!("user:default/{}", "a".repeat(250));
        assert!(user(Some(&long)).unwrap_err().contains("too long"));
    }
}
