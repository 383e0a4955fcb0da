//! `backend.auth`: legacy service-to-service keys and external access, as Backstage reads them.

use std::str::FromStr;

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;
use url::Url;

use super::coerce::{Coerced, parse_http_url, via};
use super::error::{ConfigError, parse_at};
use super::secret::Secret;

/// Backstage's subject for `legacy` external access without one.
const DEFAULT_LEGACY_SUBJECT: &str = "external:backstage-plugin";
/// Our plugin id, as `accessRestrictions` name it.
const OWN_PLUGIN_ID: &str = "notifications";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// `backend.auth.keys`: decoded secrets.
    pub keys: Vec<Secret<Vec<u8>>>,
    pub external_access: Vec<ExternalAccess>,
}

/// An entry of `backend.auth.externalAccess`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalAccess {
    /// A fixed bearer token.
    Static {
        token: Secret<String>,
        subject: String,
    },
    /// JWTs signed with a shared secret (Backstage's legacy tokens).
    Legacy {
        secret: Secret<Vec<u8>>,
        subject: String,
    },
    /// JWTs signed with a key of a published JWKS.
    Jwks(JwksAccess),
}

/// The options of a `jwks` entry (Backstage's `jwks.ts`: `url` required, the rest optional).
/// Unset lists accept anything, as in Backstage.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map with url")]
pub struct JwksAccess {
    #[serde(deserialize_with = "jwks_url")]
    pub url: Url,
    #[serde(rename = "issuer", default, deserialize_with = "via::<StringList, _>")]
    pub issuers: Option<Vec<String>>,
    #[serde(rename = "algorithm", default, deserialize_with = "algorithms")]
    pub algorithms: Option<Vec<Algorithm>>,
    #[serde(
        rename = "audience",
        default,
        deserialize_with = "via::<StringList, _>"
    )]
    pub audiences: Option<Vec<String>>,
    /// The subject is `external:<subjectPrefix>:<sub>`, or `external:<sub>` without a prefix
    /// (Backstage treats an empty prefix as none).
    #[serde(default, deserialize_with = "non_empty")]
    pub subject_prefix: Option<String>,
}

/// `backend.auth` as written: `externalAccess` options are read once their type is known.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "a map")]
pub(super) struct RawAuth {
    keys: Vec<Key>,
    external_access: Vec<RawExternalAccess>,
}

/// An entry of a key list: `{secret: <base64>}`.
#[derive(Deserialize)]
#[serde(expecting = "a map with a secret")]
pub(super) struct Key {
    secret: Base64Secret,
}

/// For `notifications.userTokenKeys`, read in one step: the warning names the list.
impl Coerced for Key {
    type Value = Secret<Vec<u8>>;
    fn value(self) -> Secret<Vec<u8>> {
        self.secret.into_bytes("notifications.userTokenKeys")
    }
}

#[derive(Deserialize)]
#[serde(expecting = "a map with type and options")]
struct RawExternalAccess {
    #[serde(rename = "type")]
    kind: AccessKind,
    options: Value,
    #[serde(rename = "accessRestrictions")]
    access_restrictions: Option<Vec<AccessRestriction>>,
}

/// One entry of `accessRestrictions`; the permission parts do not concern this plugin's routes.
#[derive(Deserialize)]
#[serde(expecting = "a map with a plugin")]
struct AccessRestriction {
    plugin: String,
}

enum AccessKind {
    Static,
    Legacy,
    Jwks,
}

impl<'de> Deserialize<'de> for AccessKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "static" => Ok(Self::Static),
            "legacy" => Ok(Self::Legacy),
            "jwks" => Ok(Self::Jwks),
            other => Err(de::Error::custom(format!(
                "unsupported external access type {other:?} (expected one of static, legacy, jwks)"
            ))),
        }
    }
}

// Anything else is accepted and ignored, like every unknown key.
#[derive(Deserialize)]
#[serde(expecting = "a map with token and subject")]
struct StaticOptions {
    #[serde(deserialize_with = "static_token")]
    token: Secret<String>,
    #[serde(deserialize_with = "subject")]
    subject: String,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with secret and an optional subject")]
struct LegacyOptions {
    secret: Base64Secret,
    #[serde(default = "legacy_subject", deserialize_with = "subject")]
    subject: String,
}

fn legacy_subject() -> String {
    DEFAULT_LEGACY_SUBJECT.to_owned()
}

impl RawAuth {
    /// `key` is where this section sits (`backend.auth`).
    pub(super) fn into_config(self, key: &str) -> Result<AuthConfig, ConfigError> {
        let mut external_access = Vec::new();
        for (i, access) in self.external_access.into_iter().enumerate() {
            // An entry restricted to other plugins gives no access here: its tokens are not
            // recognised (401; upstream answers 403), whatever they would otherwise match.
            if let Some(restrictions) = &access.access_restrictions
                && !restrictions.iter().any(|r| r.plugin == OWN_PLUGIN_ID)
            {
                tracing::debug!(
                    entry = i,
                    "externalAccess entry restricted to other plugins: skipped"
                );
                continue;
            }
            let options_key = format!("{key}.externalAccess[{i}].options");
            external_access.push(match access.kind {
                AccessKind::Static => {
                    let StaticOptions { token, subject } = parse_at(access.options, &options_key)?;
                    ExternalAccess::Static { token, subject }
                }
                AccessKind::Legacy => {
                    let LegacyOptions { secret, subject } = parse_at(access.options, &options_key)?;
                    ExternalAccess::Legacy {
                        secret: secret.into_bytes(&format!("{options_key}.secret")),
                        subject,
                    }
                }
                AccessKind::Jwks => ExternalAccess::Jwks(parse_at(access.options, &options_key)?),
            });
        }
        let keys = self
            .keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| k.secret.into_bytes(&format!("{key}.keys[{i}].secret")))
            .collect();
        Ok(AuthConfig {
            keys,
            external_access,
        })
    }
}

/// Algorithms of keys a JWKS can publish. HMAC is refused: its key would be public.
fn algorithms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Algorithm>>, D::Error> {
    let Some(names) = StringList::deserialize(d)?.value() else {
        return Ok(None);
    };
    let algorithm = |name: &String| {
        Algorithm::from_str(name)
            .ok()
            .filter(|alg| alg.family() != AlgorithmFamily::Hmac)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unsupported algorithm {name:?} (expected one of RS256, RS384, RS512, PS256, \
                     PS384, PS512, ES256, ES384, EdDSA)"
                ))
            })
    };
    names
        .iter()
        .map(algorithm)
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Backstage reads the JWKS URL as a run of non-space characters, then as a URL.
fn jwks_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return Err(de::Error::custom(
            "Illegal JWKS URL, must be a set of non-space characters",
        ));
    }
    parse_http_url(&text, &text).map_err(de::Error::custom)
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(String::deserialize(d)?).filter(|s| !s.is_empty()))
}

/// A string or a list of strings; Backstage splits each on spaces and commas and drops
/// duplicates and empty parts.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
enum StringList {
    One(String),
    Many(Vec<String>),
}

impl Coerced for StringList {
    /// `None` when nothing is left, which Backstage reads as unset.
    type Value = Option<Vec<String>>;

    fn value(self) -> Option<Vec<String>> {
        let raw = match self {
            Self::One(value) => vec![value],
            Self::Many(values) => values,
        };
        let mut values: Vec<String> = Vec::new();
        for part in raw.iter().flat_map(|v| v.split([' ', ','])) {
            if !part.is_empty() && !values.iter().any(|v| v == part) {
                values.push(part.to_owned());
            }
        }
        (!values.is_empty()).then_some(values)
    }
}

/// A base64 secret, decoded as Backstage decodes it: see [`decode_like_node`].
struct Base64Secret {
    bytes: Secret<Vec<u8>>,
    /// Characters outside the base64 alphabets, which the decoder skipped.
    skipped: usize,
}

impl Base64Secret {
    /// The bytes; `key` names the secret in the warning about skipped characters.
    fn into_bytes(self, key: &str) -> Secret<Vec<u8>> {
        if self.skipped > 0 {
            // Most likely a secret that was never base64 (a passphrase): Backstage takes it the
            // same way, but it is weaker than its length suggests.
            tracing::warn!(
                key,
                skipped = self.skipped,
                "characters outside the base64 alphabet in this secret were skipped, as Backstage \
                 does; generate secrets with `openssl rand -base64 32`"
            );
        }
        self.bytes
    }
}

/// Shorter HS256 secrets can be guessed offline from any token signed with them.
const MIN_SECRET_BYTES: usize = 16;

impl<'de> Deserialize<'de> for Base64Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Secret::<String>::deserialize(deserializer)?;
        if text.trim().is_empty() {
            return Err(de::Error::custom("must not be empty"));
        }
        let (bytes, skipped) = decode_like_node(&text);
        if bytes.len() < MIN_SECRET_BYTES {
            let skipped = match skipped {
                0 => String::new(),
                n => format!(", {n} characters outside the base64 alphabet skipped"),
            };
            return Err(de::Error::custom(format!(
                "decodes to {} bytes{skipped}; at least {MIN_SECRET_BYTES} are needed \
                 (generate one with `openssl rand -base64 32`)",
                bytes.len()
            )));
        }
        Ok(Self {
            bytes: Secret::new(bytes),
            skipped,
        })
    }
}

/// Node's `Buffer.from(text, 'base64')`, which Backstage reads these secrets with, and the number
/// of characters it skipped (not counting `=` and what follows it).
///
/// Node takes both alphabets at once (`+` and `-` are 62, `/` and `_` 63), skips every other
/// character (whitespace, punctuation), whatever the length, and stops at the first `=`. The
/// 6-bit values are packed into bytes; a final group of 2 or 3 characters gives 1 or 2 bytes,
/// a lone one none. Node reads each UTF-16 code unit by its low byte (so `ŭ`, U+016D, reads as
/// `m`), which is copied too, so that any secret gives the key Backstage's would.
fn decode_like_node(text: &str) -> (Vec<u8>, usize) {
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut skipped = 0;
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for unit in text.encode_utf16() {
        // The low byte, as Node reads it.
        let value = match unit as u8 {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'a'..=b'z' => c - b'a' + 26,
            c @ b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => {
                skipped += 1;
                continue;
            }
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // The 8 bits above the `bits` still pending; those are all the buffer keeps.
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    (bytes, skipped)
}

/// Backstage's rules for static tokens: at least 8 characters, no whitespace.
fn static_token<'de, D: Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
    let token = Secret::<String>::deserialize(d)?;
    if token.chars().any(char::is_whitespace) {
        Err(de::Error::custom("must not contain whitespace"))
    } else if token.chars().count() < 8 {
        Err(de::Error::custom("must be at least 8 characters long"))
    } else {
        Ok(token)
    }
}

/// Backstage's rule for subjects: non-empty, no whitespace.
fn subject<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let subject = String::deserialize(d)?;
    if subject.is_empty() || subject.chars().any(char::is_whitespace) {
        Err(de::Error::custom(
            "must be non-empty and without whitespace",
        ))
    } else {
        Ok(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn auth(yaml: &str) -> Result<AuthConfig, String> {
        Config::from_yaml_str(yaml)
            .map(|config| config.backend.auth)
            .map_err(|err| err.to_string())
    }

    fn key(secret: &str) -> Result<Vec<u8>, String> {
        auth(&format!(
            "backend: {{auth: {{keys: [{{secret: '{secret}'}}]}}}}"
        ))
        .map(|mut auth| auth.keys.remove(0).expose().clone())
    }

    #[test]
    fn keys_are_base64_in_either_alphabet() {
        let bytes: Vec<u8> = [0xfb, 0xff, 0xbf]
            .repeat(6)
            .into_iter()
            .chain([0x01])
            .collect();
        let (standard, url_safe) = ("+/+/".repeat(6), "-_-_".repeat(6));
        assert_eq!(
            key(&format!("{standard}AQ==")),
            Ok(bytes.clone()),
            "standard, padded"
        );
        assert_eq!(
            key(&format!("{standard}AQ")),
            Ok(bytes.clone()),
            "standard, unpadded"
        );
        assert_eq!(
            key(&format!("{url_safe}AQ")),
            Ok(bytes.clone()),
            "URL-safe, unpadded"
        );
        assert_eq!(
            key(&format!("{url_safe}AQ==")),
            Ok(bytes.clone()),
            "URL-safe, padded"
        );
        assert_eq!(
            key(&format!("  {standard}AQ==\n")),
            Ok(bytes),
            "surrounding whitespace"
        );
        assert!(
            key("+/+/AQ==")
                .unwrap_err()
                .contains("at least 16 are needed"),
            "short secrets are refused"
        );
        assert_eq!(
            key("not base64!"),
            Err(
                "invalid configuration at backend.auth.keys[0].secret: decodes to 6 bytes, 2 \
                 characters outside the base64 alphabet skipped; at least 16 are needed \
                 (generate one with `openssl rand -base64 32`)"
                    .into()
            )
        );
        assert_eq!(
            key(""),
            Err("invalid configuration at backend.auth.keys[0].secret: must not be empty".into())
        );
        assert_eq!(
            auth("backend: {auth: {keys: [{}]}}"),
            Err("invalid configuration at backend.auth.keys[0]: missing field `secret`".into())
        );
    }

    /// Expected bytes from Node 20: `Buffer.from(s, 'base64').toString('hex')`.
    #[test]
    fn secrets_decode_as_nodes_buffer_from_does() {
        let hex = |s: &str| {
            let (bytes, skipped) = decode_like_node(s);
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            (hex, skipped)
        };
        let cases = [
            // Backstage accepts it: `-` is URL-safe base64, and the lone last character is dropped.
            (
                "conformance-hs256-secret-0a1b2c3d4e5f6071",
                "7289dfa2b99a9dc7be86cdb9ebeb1e72b7adfb46b56f67377787b97fad3b",
                0,
            ),
            (
                "AQIDBAUGBwgJCgsMDQ4PEA==",
                "0102030405060708090a0b0c0d0e0f10",
                0,
            ),
            ("-_+/", "fbffbf", 0),
            ("a", "", 0),
            ("ab", "69", 0),
            ("abc", "69b7", 0),
            ("ab=cd", "69", 0),
            ("a b\nc d", "69b71d", 3),
            ("%%%", "", 3),
            ("ab\u{16d}c", "69b99c", 0),
        ];
        for (input, bytes, skipped) in cases {
            assert_eq!(hex(input), (bytes.to_owned(), skipped), "{input:?}");
        }
        assert_eq!(
            key("conformance-hs256-secret-0a1b2c3d4e5f6071").map(|k| k.len()),
            Ok(30)
        );
    }

    fn access(options: &str, kind: &str) -> Result<ExternalAccess, String> {
        auth(&format!(
            "backend: {{auth: {{externalAccess: [{{type: {kind}, options: {options}}}]}}}}"
        ))
        .map(|mut auth| auth.external_access.remove(0))
    }

    #[test]
    fn static_tokens() {
        assert_eq!(
            access(
                "{token: abcdefgh, subject: ci-bot, accessRestrictions: [{plugin: notifications}]}",
                "static"
            ),
            Ok(ExternalAccess::Static {
                token: "abcdefgh".into(),
                subject: "ci-bot".into()
            })
        );
        let prefix = "invalid configuration at backend.auth.externalAccess[0].options";
        assert_eq!(
            access("{token: abcdefg, subject: s}", "static"),
            Err(format!(
                "{prefix}.token: must be at least 8 characters long"
            ))
        );
        assert_eq!(
            access("{token: 'abcd efgh', subject: s}", "static"),
            Err(format!("{prefix}.token: must not contain whitespace"))
        );
        assert_eq!(
            access("{token: abcdefgh, subject: 'a b'}", "static"),
            Err(format!(
                "{prefix}.subject: must be non-empty and without whitespace"
            ))
        );
        assert_eq!(
            access("{token: abcdefgh}", "static"),
            Err(format!("{prefix}: missing field `subject`"))
        );
        assert_eq!(
            auth("backend: {auth: {externalAccess: [{type: static}]}}"),
            Err(
                "invalid configuration at backend.auth.externalAccess[0]: missing field `options`"
                    .into()
            )
        );
    }

    #[test]
    fn legacy_secrets() {
        assert_eq!(
            access("{secret: AQIDBAUGBwgJCgsMDQ4PEA==}", "legacy"),
            Ok(ExternalAccess::Legacy {
                secret: (1..=16).collect(),
                subject: "external:backstage-plugin".into()
            })
        );
        assert_eq!(
            access(
                "{secret: AQIDBAUGBwgJCgsMDQ4PEA==, subject: my-plugin}",
                "legacy"
            ),
            Ok(ExternalAccess::Legacy {
                secret: (1..=16).collect(),
                subject: "my-plugin".into()
            })
        );
        assert!(
            access("{secret: '%%%'}", "legacy")
                .unwrap_err()
                .starts_with("invalid configuration at backend.auth.externalAccess[0].options.secret: decodes to 0 bytes, 3 characters outside the base64 alphabet skipped;")
        );
    }

    #[test]
    fn entries_restricted_to_other_plugins_give_no_access_here() {
        let entries = auth(concat!(
            "backend: {auth: {externalAccess: [",
            "{type: static, options: {token: catalog-only, subject: a}, accessRestrictions: [{plugin: catalog}]},",
            "{type: static, options: {token: ours-too, subject: b}, accessRestrictions: [{plugin: catalog}, {plugin: notifications, permission: x}]},",
            "{type: static, options: {token: everywhere, subject: c}}",
            "]}}"
        ))
        .unwrap()
        .external_access;
        let subjects: Vec<&str> = entries
            .iter()
            .map(|e| match e {
                ExternalAccess::Static { subject, .. } => subject.as_str(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(subjects, ["b", "c"]);
    }

    #[test]
    fn jwks_entries() {
        let url = Url::parse("https://idp.example.com/jwks.json").unwrap();
        assert_eq!(
            access("{url: 'https://idp.example.com/jwks.json'}", "jwks"),
            Ok(ExternalAccess::Jwks(JwksAccess {
                url: url.clone(),
                issuers: None,
                algorithms: None,
                audiences: None,
                subject_prefix: None
            }))
        );
        assert_eq!(
            access(
                "{url: 'https://idp.example.com/jwks.json', issuer: 'https://idp.example.com', \
                 algorithm: [ES256, 'RS256,ES256'], audience: 'backstage, notifications', \
                 subjectPrefix: ci}",
                "jwks"
            ),
            Ok(ExternalAccess::Jwks(JwksAccess {
                url: url.clone(),
                issuers: Some(vec!["https://idp.example.com".into()]),
                algorithms: Some(vec![Algorithm::ES256, Algorithm::RS256]),
                audiences: Some(vec!["backstage".into(), "notifications".into()]),
                subject_prefix: Some("ci".into())
            }))
        );
        assert_eq!(
            access(
                "{url: 'https://idp.example.com/jwks.json', audience: ' , ', subjectPrefix: ''}",
                "jwks"
            ),
            Ok(ExternalAccess::Jwks(JwksAccess {
                url,
                issuers: None,
                algorithms: None,
                audiences: None,
                subject_prefix: None
            })),
            "empty lists and prefixes count as unset"
        );
        let prefix = "invalid configuration at backend.auth.externalAccess[0].options";
        assert_eq!(
            access("{issuer: x}", "jwks"),
            Err(format!("{prefix}: missing field `url`"))
        );
        assert_eq!(
            access("{url: 'https://x/a b'}", "jwks"),
            Err(format!(
                "{prefix}.url: Illegal JWKS URL, must be a set of non-space characters"
            ))
        );
        assert!(
            access("{url: 'file:///etc/jwks.json'}", "jwks")
                .unwrap_err()
                .starts_with(&format!("{prefix}.url: expected an http or https URL"))
        );
        assert!(
            access("{url: 'https://x/jwks', algorithm: HS256}", "jwks")
                .unwrap_err()
                .starts_with(&format!(
                    "{prefix}.algorithm: unsupported algorithm \"HS256\""
                ))
        );
        assert_eq!(
            access("{url: 'https://x/jwks', audience: {a: b}}", "jwks"),
            Err(format!("{prefix}.audience: a string or a list of strings"))
        );
    }

    #[test]
    fn unsupported_types() {
        assert_eq!(
            access("{}", "magic"),
            Err("invalid configuration at backend.auth.externalAccess[0].type: unsupported external access type \"magic\" (expected one of static, legacy, jwks)".into())
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let config = auth(concat!(
            "backend:\n  auth:\n    keys: [{secret: c2VjcmV0LWtleS1ieXRlcw==}]\n    externalAccess:\n",
            "      - {type: static, options: {token: tok-SECRET-123, subject: bot}}\n",
            "      - {type: legacy, options: {secret: bGVnYWN5LXNlY3JldC1ieXRlcw==}}\n",
        ))
        .unwrap();
        let debug = format!("{config:?} {config:#?}");
        for secret in [
            "tok-SECRET-123",
            "secret-key-bytes",
            "legacy-secret",
            "c2VjcmV0",
            "bGVnYWN5",
            "115, 101",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("subject: \"bot\""), "{debug}");
    }
}
