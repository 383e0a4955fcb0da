//! Who is calling: bearer tokens to principals.
//!
//! Accepted credentials: HS256 service tokens signed with one of `backend.auth.keys` (as this
//! service's `token --service` command and senders mint them, and legacy Backstage server
//! tokens); HS256 user tokens signed with a user-token key (`notifications.userTokenKeys`, or the
//! generated `user-key`; `token --user` mints them); static tokens of
//! `backend.auth.externalAccess`; HS256 tokens signed with the secret of an `externalAccess`
//! entry of type `legacy`; and tokens signed with published keys (see [`remote`]): Backstage user
//! and plugin tokens, and `externalAccess` entries of type `jwks`.
//!
//! Every HS256 key has one role. Senders hold the service keys, so a service key never verifies
//! a user token: otherwise any sender could act as any user (as upstream, where
//! `backend.auth.keys` are service-only).
//!
//! Tokens are told apart by their header, so that static and HS256 tokens never wait on the
//! network.

mod jwks;
mod key_file;
mod remote;
mod tokens;

use std::path::Path;

use jsonwebtoken::Algorithm;
use notifications_common::UserRef;
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, Config, Discovery, ExternalAccess, Secret};
pub use key_file::{KeyFile, key_path, load_or_create_key};
use remote::RemoteVerifier;
pub use tokens::{TokenError, TokenKind, mint};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A person. `ownership_refs` are the (canonical) refs they act as: themselves and their
    /// groups.
    User {
        user_ref: UserRef,
        ownership_refs: Vec<String>,
    },
    /// Another system. `subject` becomes the origin of what it sends.
    Service { subject: String },
}

/// A verified token's claims; a user token's subject must be a user ref.
impl TryFrom<TokenKind> for Principal {
    type Error = TokenError;

    fn try_from(kind: TokenKind) -> Result<Self, TokenError> {
        Ok(match kind {
            TokenKind::User {
                user_ref,
                ownership_refs,
            } => Self::User {
                user_ref: tokens::user_ref(&user_ref)?,
                ownership_refs,
            },
            TokenKind::Service { subject } => Self::Service { subject },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Missing credentials")]
    Missing,
    #[error("{0}")]
    Invalid(String),
}

/// What tokens an HS256 key may sign.
enum KeyRole {
    /// Service tokens (`backend.auth.keys`).
    Service,
    /// `externalAccess` legacy entries: every token of the key acts as this subject.
    Legacy { subject: String },
    /// User tokens only.
    User,
}

struct HmacKey {
    secret: Vec<u8>,
    role: KeyRole,
}

struct StaticToken {
    token: Vec<u8>,
    subject: String,
}

/// Verifies bearer tokens against the configured credentials.
pub struct Authenticator {
    keys: Vec<HmacKey>,
    static_tokens: Vec<StaticToken>,
    remote: RemoteVerifier,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.len())
            .field("static_tokens", &self.static_tokens.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `signing_keys`: the service and user keys in effect; `discovery` finds the published
    /// keys of the `auth` plugin and of calling plugins. Fails only when the HTTP client for
    /// those keys cannot be set up.
    pub fn new(
        signing_keys: SigningKeys,
        config: &AuthConfig,
        discovery: &Discovery,
    ) -> Result<Self, reqwest::Error> {
        let service = signing_keys.service.into_iter().map(|secret| HmacKey {
            secret,
            role: KeyRole::Service,
        });
        let user = signing_keys.user.into_iter().map(|secret| HmacKey {
            secret,
            role: KeyRole::User,
        });
        let mut keys: Vec<HmacKey> = service.chain(user).collect();
        let mut static_tokens = Vec::new();
        let mut jwks = Vec::new();
        for access in &config.external_access {
            match access {
                ExternalAccess::Static { token, subject } => static_tokens.push(StaticToken {
                    token: token.as_bytes().to_vec(),
                    subject: subject.clone(),
                }),
                ExternalAccess::Legacy { secret, subject } => keys.push(HmacKey {
                    secret: secret.expose().clone(),
                    role: KeyRole::Legacy {
                        subject: subject.clone(),
                    },
                }),
                ExternalAccess::Jwks(access) => jwks.push(access.clone()),
            }
        }
        Ok(Self {
            keys,
            static_tokens,
            remote: RemoteVerifier::new(discovery, jwks)?,
        })
    }

    /// Authenticates an `Authorization` header value.
    pub async fn authenticate_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let token = header.and_then(bearer_token).ok_or(AuthError::Missing)?;
        self.authenticate_token(token).await
    }

    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
        // Every static token is compared, in constant time, so timing says nothing about which
        // (if any) was close.
        let mut matched = None;
        for entry in &self.static_tokens {
            if bool::from(entry.token.ct_eq(token.as_bytes())) {
                matched = Some(entry.subject.clone());
            }
        }
        if let Some(subject) = matched {
            return Ok(Principal::Service { subject });
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid(TokenError::Malformed.to_string()))?;
        if header.alg != Algorithm::HS256 {
            return self.remote.verify(token, &header).await;
        }
        let user_token = tokens::is_user_token(&header);
        let mut last_error = TokenError::Malformed;
        for key in &self.keys {
            let allowed = matches!(key.role, KeyRole::User) == user_token;
            match tokens::verify(token, &header, &key.secret) {
                Ok(verified) if allowed => {
                    return principal(verified, &key.role)
                        .map_err(|e| AuthError::Invalid(e.to_string()));
                }
                // Say why, so an operator moving user tokens off a service key knows what to do.
                Ok(_) if user_token => {
                    return Err(AuthError::Invalid(
                        "Invalid token: user tokens are not accepted when signed with a service key"
                            .into(),
                    ));
                }
                Ok(_) => {
                    return Err(AuthError::Invalid(
                        "Invalid token: a user-token key signs only user tokens".into(),
                    ));
                }
                Err(TokenError::BadSignature) => last_error = TokenError::BadSignature,
                Err(other) => return Err(AuthError::Invalid(other.to_string())),
            }
        }
        Err(AuthError::Invalid(last_error.to_string()))
    }
}

fn principal(token: tokens::Verified, role: &KeyRole) -> Result<Principal, TokenError> {
    match role {
        KeyRole::Legacy { subject } => Ok(Principal::Service {
            subject: subject.clone(),
        }),
        KeyRole::Service | KeyRole::User => token.kind.try_into(),
    }
}

/// `Bearer <token>`: scheme case-insensitive, one or more spaces.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    let token = rest.trim_start_matches(' ').trim_end();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The HS256 keys in effect, by role. The first of each list signs what the `token` command mints.
pub struct SigningKeys {
    /// `backend.auth.keys`, else the generated `auth-key`.
    pub service: Vec<Vec<u8>>,
    /// `notifications.userTokenKeys`, else the generated `user-key`.
    pub user: Vec<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("cannot read or create the signing key in {path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "a key of notifications.userTokenKeys is also a service key (backend.auth.keys or a \
         legacy externalAccess secret): senders would be able to sign user tokens; give user \
         tokens a key of their own"
    )]
    Shared,
}

impl SigningKeys {
    /// The configured keys of each role, else the generated key files in `data_dir` (created on
    /// first use). A key may not have both roles.
    pub fn load(config: &Config, data_dir: &Path) -> Result<Self, SigningKeyError> {
        let configured_or_file = |keys: &[Secret<Vec<u8>>], which| {
            if keys.is_empty() {
                load_or_create_key(data_dir, which)
                    .map(|key| vec![key])
                    .map_err(|source| SigningKeyError::File {
                        path: key_path(data_dir, which),
                        source,
                    })
            } else {
                Ok(keys.iter().map(|key| key.expose().clone()).collect())
            }
        };
        let auth = &config.backend.auth;
        let keys = Self {
            service: configured_or_file(&auth.keys, KeyFile::Service)?,
            user: configured_or_file(&config.notifications.user_token_keys, KeyFile::User)?,
        };
        let legacy = auth.external_access.iter().filter_map(|a| match a {
            ExternalAccess::Legacy { secret, .. } => Some(secret.expose()),
            _ => None,
        });
        let mut service = keys.service.iter().chain(legacy);
        if service.any(|s| keys.user.iter().any(|u| bool::from(u.ct_eq(s)))) {
            return Err(SigningKeyError::Shared);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> Authenticator {
        let config = AuthConfig {
            keys: vec![],
            external_access: vec![
                ExternalAccess::Static {
                    token: "static-token-1".into(),
                    subject: "cicd".into(),
                },
                ExternalAccess::Legacy {
                    secret: b"legacy-secret-bytes".to_vec().into(),
                    subject: "external:old".into(),
                },
            ],
        };
        let discovery = crate::config::Config::default().discovery;
        let keys = SigningKeys {
            service: vec![SERVICE_KEY.to_vec()],
            user: vec![USER_KEY.to_vec()],
        };
        Authenticator::new(keys, &config, &discovery).unwrap()
    }

    const SERVICE_KEY: &[u8] = b"primary-secret-bytes";
    const USER_KEY: &[u8] = b"user-token-secret-bytes";
    const LEGACY_KEY: &[u8] = b"legacy-secret-bytes";

    fn user(user_ref: &str) -> TokenKind {
        TokenKind::User {
            user_ref: user_ref.into(),
            ownership_refs: vec![],
        }
    }

    fn service(subject: &str) -> TokenKind {
        TokenKind::Service {
            subject: subject.into(),
        }
    }

    fn sign(key: &[u8], kind: &TokenKind) -> String {
        mint(key, kind, std::time::Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[tokio::test]
    async fn static_tokens_act_as_their_subject() {
        let auth = authenticator();
        assert_eq!(
            auth.authenticate_header(Some("Bearer static-token-1"))
                .await
                .unwrap(),
            Principal::Service {
                subject: "cicd".into()
            }
        );
        assert!(matches!(
            auth.authenticate_header(None).await,
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            auth.authenticate_header(Some("Bearer static-token-2"))
                .await,
            Err(AuthError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn signed_tokens_give_users_and_services() {
        let auth = authenticator();
        assert_eq!(
            auth.authenticate_token(&sign(USER_KEY, &user("user:default/jane")))
                .await
                .unwrap(),
            Principal::User {
                user_ref: "user:default/jane".parse().unwrap(),
                ownership_refs: vec!["user:default/jane".into()]
            }
        );
        assert_eq!(
            auth.authenticate_token(&sign(SERVICE_KEY, &service("my-service")))
                .await
                .unwrap(),
            Principal::Service {
                subject: "my-service".into()
            }
        );
        // A legacy key's tokens act as its configured subject, whatever they claim.
        assert_eq!(
            auth.authenticate_token(&sign(LEGACY_KEY, &service("backstage-server")))
                .await
                .unwrap(),
            Principal::Service {
                subject: "external:old".into()
            }
        );
        let forged = sign(b"some-other-secret", &service("x"));
        assert!(auth.authenticate_token(&forged).await.is_err());
    }

    /// Senders hold the service keys: a user token they sign is refused, else any sender could
    /// read and change any user's inbox.
    #[tokio::test]
    async fn keys_sign_only_the_tokens_of_their_role() {
        let auth = authenticator();
        for key in [SERVICE_KEY, LEGACY_KEY] {
            let err = auth
                .authenticate_token(&sign(key, &user("user:default/jane")))
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("service key"),
                "user token signed with a service key: {err}"
            );
        }
        let err = auth
            .authenticate_token(&sign(USER_KEY, &service("my-service")))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("only user tokens"), "{err}");
    }

    #[test]
    fn a_key_cannot_have_both_roles() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.backend.auth.keys = vec![SERVICE_KEY.to_vec().into()];
        config.notifications.user_token_keys = vec![SERVICE_KEY.to_vec().into()];
        assert!(matches!(
            SigningKeys::load(&config, dir.path()),
            Err(SigningKeyError::Shared)
        ));
        config.notifications.user_token_keys = vec![];
        config.backend.auth.external_access = vec![ExternalAccess::Legacy {
            secret: USER_KEY.to_vec().into(),
            subject: "external:old".into(),
        }];
        std::fs::write(
            key_path(dir.path(), KeyFile::User),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, USER_KEY),
        )
        .unwrap();
        assert!(matches!(
            SigningKeys::load(&config, dir.path()),
            Err(SigningKeyError::Shared)
        ));
        config.backend.auth.external_access = vec![];
        let keys = SigningKeys::load(&config, dir.path()).unwrap();
        assert_eq!(keys.service, vec![SERVICE_KEY.to_vec()]);
        assert_eq!(keys.user, vec![USER_KEY.to_vec()]);
        // Nothing configured: two generated keys, one per role.
        let fresh = tempfile::tempdir().unwrap();
        let keys = SigningKeys::load(&Config::default(), fresh.path()).unwrap();
        assert_ne!(keys.service, keys.user);
    }
}
