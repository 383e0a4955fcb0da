//! Limits every stored value must respect, checked before any SQL runs: a value the database
//! would refuse is a 400 with the field's name, never a database error.

use notifications_common::{NotificationPayload, NotificationRecipients};

use crate::error::Error;

use notifications_common::bounds::MAX_SHORT_TEXT;

/// A required or optional short text field (title, topic, scope, icon, origin, refs, ids).
pub fn short_text(field: &str, value: &str) -> Result<(), Error> {
    no_nul(field, value)?;
    let chars = value.chars().count();
    if chars > MAX_SHORT_TEXT {
        return Err(Error::invalid(format!(
            "{field} is too long: {chars} characters, at most {MAX_SHORT_TEXT} are allowed"
        )));
    }
    Ok(())
}

/// An id in a settings document: a non-empty short text.
pub fn setting_id(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    short_text(field, value)
}

/// PostgreSQL text cannot hold NUL characters.
pub fn no_nul(field: &str, value: &str) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::invalid(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(())
}

pub fn payload(p: &NotificationPayload) -> Result<(), Error> {
    short_text("payload.title", &p.title)?;
    let optional_short = [
        ("payload.topic", &p.topic),
        ("payload.scope", &p.scope),
        ("payload.icon", &p.icon),
    ];
    for (field, value) in optional_short {
        if let Some(v) = value {
            short_text(field, v)?;
        }
    }
    for (field, value) in [
        ("payload.description", &p.description),
        ("payload.link", &p.link),
    ] {
        if let Some(v) = value {
            no_nul(field, v)?;
        }
    }
    if let Some(metadata) = &p.metadata {
        json_without_nul(
            "payload.metadata",
            &serde_json::Value::Object(metadata.clone()),
        )?;
    }
    Ok(())
}

/// Entity refs are short texts (as every user ref is stored); exclusions are never parsed, but
/// travel in the send's JSON to the processors.
pub fn recipients(r: &NotificationRecipients) -> Result<(), Error> {
    let NotificationRecipients::Entity {
        entity_ref,
        exclude_entity_ref,
    } = r
    else {
        return Ok(());
    };
    for r in entity_ref.as_slice() {
        short_text("recipients.entityRef", r)?;
    }
    for r in exclude_entity_ref.iter().flat_map(|e| e.as_slice()) {
        no_nul("recipients.excludeEntityRef", r)?;
    }
    Ok(())
}

/// PostgreSQL's jsonb refuses `\u0000` in keys and strings.
fn json_without_nul(field: &str, value: &serde_json::Value) -> Result<(), Error> {
    match value {
        serde_json::Value::String(s) => no_nul(field, s),
        serde_json::Value::Array(items) => {
            items.iter().try_for_each(|v| json_without_nul(field, v))
        }
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            no_nul(field, k)?;
            json_without_nul(field, v)
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_titles_and_nul_bytes_are_refused_by_name() {
        let mut p = NotificationPayload {
            title: "x".repeat(255),
            ..Default::default()
        };
        assert!(payload(&p).is_ok());
        p.title = "é".repeat(256);
        assert!(
            payload(&p)
                .unwrap_err()
                .to_string()
                .starts_with("payload.title is too long")
        );
        p.title = "ok".into();
        p.description = Some("a\0b".into());
        assert!(
            payload(&p)
                .unwrap_err()
                .to_string()
                .contains("payload.description")
        );
        p.description = None;
        p.metadata = Some(
            serde_json::json!({"k": ["\u{0}"]})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert!(
            payload(&p)
                .unwrap_err()
                .to_string()
                .contains("payload.metadata")
        );
    }
}
