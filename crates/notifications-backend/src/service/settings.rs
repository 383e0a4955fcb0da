//! Notification settings: what a user sees (effective settings), what is delivered (the
//! delivery check), and what a save stores. Pure functions over stored rows and the configured
//! defaults; the contract's section 3.5 is the specification.

use std::collections::HashMap;

use notifications_common::{
    ChannelSetting, NotificationSettings, OriginSetting, TopicSetting, is_notifications_enabled_for,
};

use super::validate;
use crate::error::Error;
use crate::store::SettingRow;

/// Stored rows as channels -> origins -> topics. A row without topic sets its origin's flag; an
/// origin that only has topic rows counts as enabled.
fn group_rows<'a>(rows: impl IntoIterator<Item = &'a SettingRow>) -> Vec<ChannelSetting> {
    let mut channels: Vec<ChannelSetting> = Vec::new();
    // Origin rows are applied last: an origin's topic rows create it as enabled first.
    let mut origin_flags: Vec<&SettingRow> = Vec::new();
    for row in rows {
        let channel = find_or_push(
            &mut channels,
            |c| c.id == row.channel,
            || ChannelSetting {
                id: row.channel.clone(),
                enabled: None,
                origins: vec![],
            },
        );
        let origin = find_or_push(
            &mut channel.origins,
            |o| o.id == row.origin,
            || OriginSetting {
                id: row.origin.clone(),
                enabled: true,
                topics: Some(vec![]),
            },
        );
        match &row.topic {
            None => origin_flags.push(row),
            Some(topic) => origin
                .topics
                .get_or_insert_with(Vec::new)
                .push(TopicSetting {
                    id: topic.clone(),
                    enabled: row.enabled,
                }),
        }
    }
    for row in origin_flags {
        let origin = channels
            .iter_mut()
            .find(|c| c.id == row.channel)
            .and_then(|c| c.origins.iter_mut().find(|o| o.id == row.origin));
        if let Some(origin) = origin {
            origin.enabled = row.enabled;
        }
    }
    channels
}

/// The item `matches` finds, or the one `new` makes, pushed at the end.
#[expect(
    clippy::indexing_slicing,
    reason = "the index is the position found, or that of the item just pushed"
)]
fn find_or_push<T>(
    items: &mut Vec<T>,
    matches: impl Fn(&T) -> bool,
    new: impl FnOnce() -> T,
) -> &mut T {
    let at = match items.iter().position(matches) {
        Some(i) => i,
        None => {
            items.push(new());
            items.len() - 1
        }
    };
    &mut items[at]
}

fn find_ci<'a, T>(items: &'a [T], id: &str, key: impl Fn(&T) -> &str) -> Option<&'a T> {
    items.iter().find(|item| key(item).eq_ignore_ascii_case(id))
}

/// What `GET /settings` shows (contract 3.5.1).
///
/// `channels`: `Web` and the processors' names. `origins`/`topics`: the distinct origins and
/// (origin, topic) pairs of the user's own notifications. `stored`: the user's rows.
/// The channels effective settings show: `channels` (those a user may set), then those only
/// the configured defaults name.
pub fn channel_ids(channels: &[String], defaults: &NotificationSettings) -> Vec<String> {
    let mut ids = channels.to_vec();
    for def in &defaults.channels {
        if !ids.contains(&def.id) {
            ids.push(def.id.clone());
        }
    }
    ids
}

pub fn effective(
    channels: &[String],
    defaults: &NotificationSettings,
    mut origins: Vec<String>,
    mut topics: Vec<(String, String)>,
    stored: &[SettingRow],
) -> NotificationSettings {
    let channel_ids = channel_ids(channels, defaults);
    for def in &defaults.channels {
        for origin in &def.origins {
            if !origins.contains(&origin.id) {
                origins.push(origin.id.clone());
            }
            for topic in origin.topics() {
                let pair = (origin.id.clone(), topic.id.clone());
                if !topics.contains(&pair) {
                    topics.push(pair);
                }
            }
        }
    }
    let user_channels = group_rows(stored);
    let channels = channel_ids
        .into_iter()
        .map(|id| {
            let user_c = find_ci(&user_channels, &id, |c| &c.id);
            let def_c = find_ci(&defaults.channels, &id, |c| &c.id);
            let enabled = user_c
                .and_then(|c| c.enabled)
                .or(def_c.and_then(|c| c.enabled));
            let origin_default = enabled.unwrap_or(true);
            let origins = origins
                .iter()
                .map(|origin_id| {
                    let user_o = user_c.and_then(|c| find_ci(&c.origins, origin_id, |o| &o.id));
                    let def_o = def_c.and_then(|c| find_ci(&c.origins, origin_id, |o| &o.id));
                    let origin_enabled = match user_o {
                        Some(o) => o.enabled,
                        None => def_o.map_or(origin_default, |o| o.enabled),
                    };
                    let topics = topics
                        .iter()
                        .filter(|(o, _)| o == origin_id)
                        .map(|(_, topic_id)| {
                            let user_t =
                                user_o.and_then(|o| find_ci(o.topics(), topic_id, |t| &t.id));
                            let def_t =
                                def_o.and_then(|o| find_ci(o.topics(), topic_id, |t| &t.id));
                            // Un-set topics follow their origin, or the channel's explicit flag.
                            let inherited = if enabled.is_some() {
                                origin_default
                            } else {
                                origin_enabled
                            };
                            let topic_enabled = user_t
                                .map(|t| t.enabled)
                                .or(def_t.map(|t| t.enabled))
                                .unwrap_or(inherited);
                            TopicSetting {
                                id: topic_id.clone(),
                                enabled: topic_enabled,
                            }
                        })
                        .collect();
                    OriginSetting {
                        id: origin_id.clone(),
                        enabled: origin_enabled,
                        topics: Some(topics),
                    }
                })
                .collect();
            ChannelSetting {
                id,
                enabled,
                origins,
            }
        })
        .collect();
    NotificationSettings { channels }
}

/// Whether a notification from `origin` with `topic` goes through `channel` for a user whose
/// stored rows of that channel are `rows` (contract 3.5.2). Broadcasts are never checked.
pub fn is_enabled(
    channel: &str,
    defaults: &NotificationSettings,
    rows: &[SettingRow],
    origin: &str,
    topic: Option<&str>,
) -> bool {
    let def_c = find_ci(&defaults.channels, channel, |c| &c.id);
    let user_rows = rows
        .iter()
        .filter(|r| r.channel.eq_ignore_ascii_case(channel));
    let mut origins: Vec<OriginSetting> = group_rows(user_rows)
        .into_iter()
        .flat_map(|c| c.origins)
        .collect();
    if let Some(def) = def_c.filter(|d| d.enabled != Some(false)) {
        for origin in &def.origins {
            if find_ci(&origins, &origin.id, |o| &o.id).is_none() {
                origins.push(origin.clone());
            }
        }
    }
    let synthetic = NotificationSettings {
        channels: vec![ChannelSetting {
            id: channel.to_owned(),
            enabled: def_c.and_then(|c| c.enabled),
            origins,
        }],
    };
    is_notifications_enabled_for(&synthetic, channel, origin, topic)
}

/// The rows a `POST /settings` body stores. Channels must be `Web` or a processor's name; the
/// channel-level flag is not the user's to set and is ignored; a topic is enabled only when its
/// origin is. An entry given again replaces the earlier one, as a repeated JSON key does
/// (upstream's unique index failed on it with a 500).
pub fn rows_to_store(
    settings: &NotificationSettings,
    valid_channels: &[String],
) -> Result<Vec<SettingRow>, Error> {
    // Per channel and origin, in first-seen order.
    let mut origins: Vec<MergedOrigin<'_>> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    for channel in &settings.channels {
        if !valid_channels.contains(&channel.id) {
            return Err(Error::invalid("Invalid channel"));
        }
        for origin in &channel.origins {
            validate::setting_id("origin id", &origin.id)?;
            let key = (channel.id.as_str(), origin.id.as_str());
            let at = *index.entry(key).or_insert_with(|| {
                origins.push(MergedOrigin {
                    channel: key.0,
                    origin: key.1,
                    enabled: origin.enabled,
                    topics: Vec::new(),
                });
                origins.len() - 1
            });
            let Some(merged) = origins.get_mut(at) else {
                continue;
            };
            merged.enabled = origin.enabled;
            for topic in origin.topics() {
                validate::setting_id("topic id", &topic.id)?;
                match merged.topics.iter_mut().find(|(id, _)| *id == topic.id) {
                    Some((_, on)) => *on = topic.enabled,
                    None => merged.topics.push((&topic.id, topic.enabled)),
                }
            }
        }
    }
    let row = |channel: &str, origin: &str, topic: Option<&str>, enabled| SettingRow {
        channel: channel.to_owned(),
        origin: origin.to_owned(),
        topic: topic.map(str::to_owned),
        enabled,
    };
    Ok(origins
        .into_iter()
        .flat_map(|o| {
            std::iter::once(row(o.channel, o.origin, None, o.enabled)).chain(
                o.topics
                    .into_iter()
                    .map(move |(topic, on)| row(o.channel, o.origin, Some(topic), o.enabled && on)),
            )
        })
        .collect())
}

/// A channel's origin in a settings body, its entries given again merged in.
struct MergedOrigin<'a> {
    channel: &'a str,
    origin: &'a str,
    enabled: bool,
    /// Each topic's switch, in first-seen order.
    topics: Vec<(&'a str, bool)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(origin: &str, topic: Option<&str>, enabled: bool) -> SettingRow {
        SettingRow {
            channel: "Web".into(),
            origin: origin.into(),
            topic: topic.map(Into::into),
            enabled,
        }
    }

    fn defaults(yaml_like: serde_json::Value) -> NotificationSettings {
        serde_json::from_value(yaml_like).unwrap()
    }

    #[test]
    fn delivery_follows_origin_then_topic() {
        let none = NotificationSettings::default();
        let rows = [row("svc", None, false)];
        assert!(!is_enabled("Web", &none, &rows, "svc", None));
        assert!(!is_enabled("Web", &none, &rows, "svc", Some("t")));
        assert!(is_enabled("Web", &none, &rows, "other", None));
        let rows = [row("svc", Some("t"), false)];
        assert!(!is_enabled("Web", &none, &rows, "svc", Some("t")));
        assert!(is_enabled("Web", &none, &rows, "svc", None));
        let rows = [row("svc", None, true), row("svc", Some("t"), false)];
        assert!(is_enabled("Web", &none, &rows, "svc", None));
    }

    #[test]
    fn opt_in_channel_delivers_only_what_the_user_enabled() {
        let d = defaults(
            serde_json::json!({"channels": [{"id": "Web", "enabled": false, "origins": []}]}),
        );
        assert!(!is_enabled("Web", &d, &[], "svc", Some("important")));
        let rows = [row("svc", Some("important"), true)];
        assert!(is_enabled("Web", &d, &rows, "svc", Some("important")));
    }

    #[test]
    fn saving_refuses_unknown_channels_and_merges_repeated_entries() {
        let web = vec!["Web".to_owned()];
        let body = defaults(serde_json::json!({"channels": [{"id": "Invalid", "origins": []}]}));
        assert_eq!(
            rows_to_store(&body, &web).unwrap_err().to_string(),
            "Invalid channel"
        );
        // The last of an origin or topic given twice counts; the origin decides for its topics.
        let body = defaults(serde_json::json!({"channels": [
            {"id": "Web", "origins": [
                {"id": "o", "enabled": true, "topics": [{"id": "t", "enabled": true}]},
                {"id": "p", "enabled": true}]},
            {"id": "Web", "origins": [
                {"id": "o", "enabled": false, "topics": [{"id": "u", "enabled": true}]},
                {"id": "p", "enabled": true, "topics": [
                    {"id": "t", "enabled": true}, {"id": "t", "enabled": false}]}]}]}));
        assert_eq!(
            rows_to_store(&body, &web).unwrap(),
            vec![
                row("o", None, false),
                row("o", Some("t"), false),
                row("o", Some("u"), false),
                row("p", None, true),
                row("p", Some("t"), false),
            ]
        );
        let body = defaults(
            serde_json::json!({"channels": [{"id": "Web", "enabled": false, "origins": [
            {"id": "o", "enabled": false, "topics": [{"id": "t", "enabled": true}]}]}]}),
        );
        assert_eq!(
            rows_to_store(&body, &web).unwrap(),
            vec![row("o", None, false), row("o", Some("t"), false)]
        );
    }
}
