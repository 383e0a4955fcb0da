//! `notifications.legacyJanus` and `notifications.externalCallerSecret`: the janus-idp
//! notifications API (`@janus-idp/plugin-notifications-backend` 1.x) served beside upstream's
//! (the legacy contract, section 6.4).

use serde::{Deserialize, Deserializer, de};

use super::coerce::{Bool, LongSecret, UInt, default_from_fields, via, yes};
use super::secret::Secret;

/// The shortest `externalCallerSecret` taken: as for any bearer secret, 32 bytes (e.g.
/// `openssl rand -hex 16`) cannot be guessed.
pub const MIN_CALLER_SECRET_LEN: usize = 32;

/// How the janus API shares `/api/notifications` with upstream's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "shared, exclusive or off")]
pub enum JanusMount {
    /// Both APIs, each request dispatched by its markers (the contract's option A).
    #[default]
    Shared,
    /// Only the janus API (option B): upstream's routes are not served there.
    Exclusive,
    /// Not on `/api/notifications` (the extra base path may still serve it).
    Off,
}

/// Which API answers a request that carries no marker of either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "upstream or janus")]
pub enum ApiSide {
    #[default]
    Upstream,
    Janus,
}

/// One rule of the permission policy: `permission` is denied to `users` (every caller when
/// absent).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a map with permission and users")]
pub struct DenyRule {
    pub permission: String,
    /// Callers as janus names them (`namespace/name`).
    pub users: Option<Vec<String>>,
}

/// `notifications.legacyJanus`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct JanusConfig {
    /// `legacyJanus.enabled`: false serves the janus API nowhere.
    #[serde(default = "yes", deserialize_with = "via::<Bool, _>")]
    pub enabled: bool,
    #[serde(default)]
    pub mount: JanusMount,
    /// `legacyJanus.extraBasePath`: the janus API also (only) under this prefix (option C).
    #[serde(default, deserialize_with = "extra_base_path")]
    pub extra_base_path: Option<String>,
    /// `legacyJanus.ambiguousListGoesTo`: row 7 of the dispatch table.
    #[serde(default)]
    pub ambiguous_list_goes_to: ApiSide,
    /// `legacyJanus.allowUnauthenticated`: callers without credentials act as `guest_user`
    /// (janus 1.x on Backstage's legacy backend). Off by default: they get a 401.
    #[serde(default, deserialize_with = "via::<Bool, _>")]
    pub allow_unauthenticated: bool,
    /// `legacyJanus.guestUser`: who anonymous and shared-secret callers are.
    #[serde(default = "guest_user")]
    pub guest_user: String,
    /// `legacyJanus.acceptServiceTokens`: service tokens act as `guest_user`. Off by default, as
    /// janus 1.6.0 (a 401): every sender would otherwise also be a janus caller.
    #[serde(default, deserialize_with = "via::<Bool, _>")]
    pub accept_service_tokens: bool,
    /// `legacyJanus.userCreators`: the users (`namespace/name`, or `*` for every user) whose
    /// own token may create messages. None by default: a create names any origin and reaches
    /// anyone, so it is granted, not assumed (janus let every user create).
    #[serde(default)]
    pub user_creators: Vec<String>,
    /// `legacyJanus.validationErrorStatus`: 500 as janus, or 400.
    #[serde(default = "status_500", deserialize_with = "validation_error_status")]
    pub validation_error_status: u16,
    /// `notifications.externalCallerSecret`: the `notifications-secret` header that lets a
    /// caller without a token in, as `guest_user`. An empty string is no secret (as janus).
    /// A sibling key: `Config` reads it into here.
    #[serde(skip)]
    pub external_caller_secret: Option<Secret<String>>,
    /// `legacyJanus.permissions.deny`; `None`: no policy, every call is allowed (janus with
    /// the permission framework off).
    #[serde(rename = "permissions", default, deserialize_with = "deny_rules")]
    pub deny: Option<Vec<DenyRule>>,
}

default_from_fields!(JanusConfig);

fn guest_user() -> String {
    "default/guest".into()
}

fn status_500() -> u16 {
    500
}

/// Under the plugin's own mount it would collide with upstream's routes.
fn extra_base_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let mount = notifications_common::NOTIFICATIONS_MOUNT;
    let path = String::deserialize(d)?.trim_end_matches('/').to_owned();
    if !path.starts_with('/') || path == mount || path.starts_with(&format!("{mount}/")) {
        return Err(de::Error::custom(format!(
            "expected a path starting with / outside {mount}"
        )));
    }
    Ok(Some(path))
}

fn validation_error_status<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    match UInt::<u16>::deserialize(d)?.0 {
        status @ (400 | 500) => Ok(status),
        _ => Err(de::Error::custom("expected 400 or 500")),
    }
}

fn deny_rules<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<DenyRule>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, expecting = "a map with deny")]
    struct Permissions {
        deny: Vec<DenyRule>,
    }
    Permissions::deserialize(d).map(|p| Some(p.deny))
}

/// `notifications.externalCallerSecret`: an empty string is no secret (as janus); any other
/// value has at least [`MIN_CALLER_SECRET_LEN`] bytes.
pub(super) struct CallerSecret(pub Option<Secret<String>>);

impl<'de> Deserialize<'de> for CallerSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secret = Secret::<String>::deserialize(deserializer)?;
        if secret.is_empty() {
            return Ok(Self(None));
        }
        LongSecret::<MIN_CALLER_SECRET_LEN>::new(secret).map(|s| Self(Some(s.0)))
    }
}

impl JanusConfig {
    /// Whether `user` (`namespace/name`) may create messages with their own token.
    pub fn user_may_create(&self, user: &str) -> bool {
        self.user_creators.iter().any(|u| u == "*" || u == user)
    }

    /// Whether `/api/notifications` dispatches requests to the janus API at all.
    pub fn on_plugin_mount(&self) -> bool {
        self.enabled && self.mount != JanusMount::Off
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn janus(yaml: &str) -> Result<JanusConfig, String> {
        Config::from_yaml_str(yaml)
            .map(|c| c.notifications.janus)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn keys_defaults_and_errors() {
        let defaults = janus("").unwrap();
        assert_eq!(defaults, JanusConfig::default());
        // Writes are granted, not assumed: no user creates, service tokens are refused.
        assert!(!defaults.accept_service_tokens && !defaults.user_may_create("default/alice"));
        let everyone = janus("notifications: {legacyJanus: {userCreators: ['*']}}").unwrap();
        assert!(everyone.user_may_create("default/alice"));
        let config = janus(
            "notifications:\n  externalCallerSecret: s3cret-of-at-least-thirty-two-bytes\n  legacyJanus:\n    mount: exclusive\n    \
             extraBasePath: /api/notifications-legacy/\n    ambiguousListGoesTo: janus\n    \
             allowUnauthenticated: 'true'\n    acceptServiceTokens: true\n    userCreators: [default/alice]\n    \
             validationErrorStatus: 400\n    permissions:\n      \
             deny: [{permission: notifications.create, users: [default/guest]}]\n",
        )
        .unwrap();
        assert_eq!(
            config,
            JanusConfig {
                mount: JanusMount::Exclusive,
                extra_base_path: Some("/api/notifications-legacy".into()),
                ambiguous_list_goes_to: ApiSide::Janus,
                allow_unauthenticated: true,
                accept_service_tokens: true,
                user_creators: vec!["default/alice".into()],
                validation_error_status: 400,
                external_caller_secret: Some("s3cret-of-at-least-thirty-two-bytes".into()),
                deny: Some(vec![DenyRule {
                    permission: "notifications.create".into(),
                    users: Some(vec!["default/guest".into()]),
                }]),
                ..JanusConfig::default()
            }
        );
        assert!(!format!("{config:?}").contains("s3cret"));
        // A guessable secret stops start-up, without showing it.
        let error = janus("notifications: {externalCallerSecret: s3cret}").unwrap_err();
        assert_eq!(
            error,
            "invalid configuration at notifications.externalCallerSecret: must be at least 32 \
             bytes long (the value is not shown: it is a secret)"
        );
        assert_eq!(
            janus("notifications: {externalCallerSecret: ''}")
                .unwrap()
                .external_caller_secret,
            None,
            "an empty secret is none, as janus"
        );
        assert!(
            !janus("notifications: {legacyJanus: {mount: off}}")
                .unwrap()
                .on_plugin_mount()
        );
        for (yaml, message) in [
            (
                "{extraBasePath: /api/notifications/legacy}",
                "extraBasePath: expected a path",
            ),
            ("{extraBasePath: legacy}", "extraBasePath: expected a path"),
            (
                "{validationErrorStatus: 418}",
                "validationErrorStatus: expected 400 or 500",
            ),
            ("{mount: both}", "unknown variant `both`"),
        ] {
            let error = janus(&format!("notifications: {{legacyJanus: {yaml}}}")).unwrap_err();
            assert!(
                error.contains("notifications.legacyJanus") && error.contains(message),
                "{error}"
            );
        }
    }
}
