//! `notifications.legacyJanus` and `notifications.externalCallerSecret`: the janus-idp
//! notifications API (`@janus-idp/plugin-notifications-backend` 1.x) served beside upstream's
//! (the legacy contract, section 6.4).

use std::fmt;

use serde::{Deserialize, Deserializer};

use super::coerce::{Bool, LongSecret, SecretString};

/// The shortest `externalCallerSecret` taken: as for any bearer secret, 32 bytes (e.g.
/// `openssl rand -hex 16`) cannot be guessed.
pub const MIN_CALLER_SECRET_LEN: usize = 32;

/// How the janus API shares `/api/notifications` with upstream's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "shared, exclusive or off")]
pub enum JanusMount {
    /// Both APIs, each request dispatched by its markers (the contract's option A).
    Shared,
    /// Only the janus API (option B): upstream's routes are not served there.
    Exclusive,
    /// Not on `/api/notifications` (the extra base path may still serve it).
    Off,
}

/// Which API answers a request that carries no marker of either.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", expecting = "upstream or janus")]
pub enum ApiSide {
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

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawJanus")]
pub struct JanusConfig {
    /// `legacyJanus.enabled`: false serves the janus API nowhere.
    pub enabled: bool,
    pub mount: JanusMount,
    /// `legacyJanus.extraBasePath`: the janus API also (only) under this prefix (option C).
    pub extra_base_path: Option<String>,
    /// `legacyJanus.ambiguousListGoesTo`: row 7 of the dispatch table.
    pub ambiguous_list_goes_to: ApiSide,
    /// `legacyJanus.allowUnauthenticated`: callers without credentials act as `guest_user`
    /// (janus 1.x on Backstage's legacy backend). Off by default: they get a 401.
    pub allow_unauthenticated: bool,
    /// `legacyJanus.guestUser`: who anonymous and shared-secret callers are.
    pub guest_user: String,
    /// `legacyJanus.acceptServiceTokens`: service tokens act as `guest_user`. Off by default, as
    /// janus 1.6.0 (a 401): every sender would otherwise also be a janus caller.
    pub accept_service_tokens: bool,
    /// `legacyJanus.userCreators`: the users (`namespace/name`, or `*` for every user) whose
    /// own token may create messages. None by default: a create names any origin and reaches
    /// anyone, so it is granted, not assumed (janus let every user create).
    pub user_creators: Vec<String>,
    /// `legacyJanus.validationErrorStatus`: 500 as janus, or 400.
    pub validation_error_status: u16,
    /// `notifications.externalCallerSecret`: the `notifications-secret` header that lets a
    /// caller without a token in, as `guest_user`. An empty string is no secret (as janus).
    pub external_caller_secret: Option<String>,
    /// `legacyJanus.permissions.deny`; `None`: no policy, every call is allowed (janus with
    /// the permission framework off).
    pub deny: Option<Vec<DenyRule>>,
}

impl Default for JanusConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mount: JanusMount::Shared,
            extra_base_path: None,
            ambiguous_list_goes_to: ApiSide::Upstream,
            allow_unauthenticated: false,
            guest_user: "default/guest".into(),
            accept_service_tokens: false,
            user_creators: Vec::new(),
            validation_error_status: 500,
            external_caller_secret: None,
            deny: None,
        }
    }
}

impl fmt::Debug for JanusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JanusConfig")
            .field("enabled", &self.enabled)
            .field("mount", &self.mount)
            .field("extra_base_path", &self.extra_base_path)
            .field("ambiguous_list_goes_to", &self.ambiguous_list_goes_to)
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("guest_user", &self.guest_user)
            .field("accept_service_tokens", &self.accept_service_tokens)
            .field("user_creators", &self.user_creators)
            .field("validation_error_status", &self.validation_error_status)
            .field(
                "external_caller_secret",
                &self.external_caller_secret.as_ref().map(|_| "***"),
            )
            .field("deny", &self.deny)
            .finish()
    }
}

/// `notifications.legacyJanus` as written.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "a map")]
struct RawJanus {
    enabled: Option<Bool>,
    mount: Option<JanusMount>,
    extra_base_path: Option<String>,
    ambiguous_list_goes_to: Option<ApiSide>,
    allow_unauthenticated: Option<Bool>,
    guest_user: Option<String>,
    accept_service_tokens: Option<Bool>,
    user_creators: Option<Vec<String>>,
    validation_error_status: Option<u16>,
    permissions: Option<RawPermissions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a map with deny")]
struct RawPermissions {
    deny: Vec<DenyRule>,
}

impl TryFrom<RawJanus> for JanusConfig {
    type Error = String;

    fn try_from(raw: RawJanus) -> Result<Self, String> {
        let defaults = Self::default();
        let mount = notifications_common::NOTIFICATIONS_MOUNT;
        let extra_base_path = match raw.extra_base_path {
            None => None,
            Some(path) => {
                let path = path.trim_end_matches('/').to_owned();
                // Under the plugin's own mount it would collide with upstream's routes.
                if !path.starts_with('/') || path == mount || path.starts_with(&format!("{mount}/"))
                {
                    return Err(format!(
                        "extraBasePath: expected a path starting with / outside {mount}"
                    ));
                }
                Some(path)
            }
        };
        let validation_error_status = raw
            .validation_error_status
            .unwrap_or(defaults.validation_error_status);
        if !matches!(validation_error_status, 400 | 500) {
            return Err("validationErrorStatus: expected 400 or 500".into());
        }
        Ok(Self {
            enabled: raw.enabled.map_or(defaults.enabled, |b| b.0),
            mount: raw.mount.unwrap_or(defaults.mount),
            extra_base_path,
            ambiguous_list_goes_to: raw
                .ambiguous_list_goes_to
                .unwrap_or(defaults.ambiguous_list_goes_to),
            allow_unauthenticated: raw
                .allow_unauthenticated
                .map_or(defaults.allow_unauthenticated, |b| b.0),
            guest_user: raw.guest_user.unwrap_or(defaults.guest_user),
            accept_service_tokens: raw
                .accept_service_tokens
                .map_or(defaults.accept_service_tokens, |b| b.0),
            user_creators: raw.user_creators.unwrap_or(defaults.user_creators),
            validation_error_status,
            // A sibling key (`notifications.externalCallerSecret`): set by the section above.
            external_caller_secret: None,
            deny: raw.permissions.map(|p| p.deny),
        })
    }
}

/// `notifications.externalCallerSecret`: an empty string is no secret (as janus); any other
/// value has at least [`MIN_CALLER_SECRET_LEN`] bytes.
pub(super) struct CallerSecret(Option<String>);

impl<'de> Deserialize<'de> for CallerSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secret = SecretString::deserialize(deserializer)?.0;
        if secret.is_empty() {
            return Ok(Self(None));
        }
        LongSecret::<MIN_CALLER_SECRET_LEN>::new(secret).map(|s| Self(Some(s.0)))
    }
}

impl JanusConfig {
    /// Takes `notifications.externalCallerSecret`.
    pub(super) fn with_secret(mut self, secret: Option<CallerSecret>) -> Self {
        self.external_caller_secret = secret.and_then(|s| s.0);
        self
    }

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
