//! Who is calling: bearer tokens to principals.
//!
//! Accepted credentials: HS256 tokens signed with one of `backend.auth.keys` (user tokens and
//! service tokens, as this service's `token` command mints them, and legacy Backstage server
//! tokens); static tokens of `backend.auth.externalAccess`; HS256 tokens signed with the secret
//! of an `externalAccess` entry of type `legacy`; and tokens signed with published keys (see
//! [`remote`]): Backstage user and plugin tokens, and `externalAccess` entries of type `jwks`.
//!
//! Tokens are told apart by their header, so that static and HS256 tokens never wait on the
//! network.

mod jwks;
mod key_file;
mod remote;
mod tokens;

use std::path::Path;

use jsonwebtoken::Algorithm;
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, Discovery, ExternalAccess};
pub use key_file::{key_path, load_or_create_key};
use remote::RemoteVerifier;
pub use tokens::{TokenError, TokenKind, mint};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A person. `user_ref` is the canonical (lower-case) user entity ref; `ownership_refs` are
    /// the refs they act as (themselves and their groups).
    User {
        user_ref: String,
        ownership_refs: Vec<String>,
    },
    /// Another system. `subject` becomes the origin of what it sends.
    Service { subject: String },
}

impl From<TokenKind> for Principal {
    fn from(kind: TokenKind) -> Self {
        match kind {
            TokenKind::User {
                user_ref,
                ownership_refs,
            } => Self::User {
                user_ref,
                ownership_refs,
            },
            TokenKind::Service { subject } => Self::Service { subject },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Missing credentials")]
    Missing,
    #[error("{0}")]
    Invalid(String),
}

struct HmacKey {
    secret: Vec<u8>,
    /// Set for `externalAccess` legacy entries: every token of the key acts as this subject.
    fixed_subject: Option<String>,
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
    /// `signing_keys`: the keys of `backend.auth.keys` (or the generated one); `discovery` finds
    /// the published keys of the `auth` plugin and of calling plugins. Fails only when the HTTP
    /// client for those keys cannot be set up.
    pub fn new(
        signing_keys: Vec<Vec<u8>>,
        config: &AuthConfig,
        discovery: &Discovery,
    ) -> Result<Self, reqwest::Error> {
        let mut keys: Vec<HmacKey> = signing_keys
            .into_iter()
            .map(|secret| HmacKey {
                secret,
                fixed_subject: None,
            })
            .collect();
        let mut static_tokens = Vec::new();
        let mut jwks = Vec::new();
        for access in &config.external_access {
            match access {
                ExternalAccess::Static { token, subject } => static_tokens.push(StaticToken {
                    token: token.as_bytes().to_vec(),
                    subject: subject.clone(),
                }),
                ExternalAccess::Legacy { secret, subject } => keys.push(HmacKey {
                    secret: secret.clone(),
                    fixed_subject: Some(subject.clone()),
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
        let mut last_error = TokenError::Malformed;
        for key in &self.keys {
            match tokens::verify(token, &header, &key.secret) {
                Ok(verified) => return principal(verified, key.fixed_subject.as_deref()),
                Err(TokenError::BadSignature) => last_error = TokenError::BadSignature,
                Err(other) => return Err(AuthError::Invalid(other.to_string())),
            }
        }
        Err(AuthError::Invalid(last_error.to_string()))
    }
}

fn principal(token: tokens::Verified, fixed_subject: Option<&str>) -> Result<Principal, AuthError> {
    if let Some(subject) = fixed_subject {
        return Ok(Principal::Service {
            subject: subject.to_owned(),
        });
    }
    Ok(token.kind.into())
}

/// `Bearer <token>`: scheme case-insensitive, one or more spaces.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    let token = rest.trim_start_matches(' ').trim_end();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The signing keys in effect: the configured ones, else the key kept in the data directory
/// (created on first use).
pub fn signing_keys(config: &AuthConfig, data_dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    if config.keys.is_empty() {
        Ok(vec![load_or_create_key(data_dir)?])
    } else {
        Ok(config.keys.clone())
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
                    secret: b"legacy-secret-bytes".to_vec(),
                    subject: "external:old".into(),
                },
            ],
        };
        let discovery = crate::config::Config::default().discovery;
        Authenticator::new(vec![b"primary-secret-bytes".to_vec()], &config, &discovery).unwrap()
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
        let user = mint(
            b"primary-secret-bytes",
            &TokenKind::User {
                user_ref: "user:default/jane".into(),
                ownership_refs: vec![],
            },
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            auth.authenticate_token(&user).await.unwrap(),
            Principal::User {
                user_ref: "user:default/jane".into(),
                ownership_refs: vec!["user:default/jane".into()]
            }
        );
        let service = mint(
            b"primary-secret-bytes",
            &TokenKind::Service {
                subject: "my-service".into(),
            },
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            auth.authenticate_token(&service).await.unwrap(),
            Principal::Service {
                subject: "my-service".into()
            }
        );
        // A legacy key's tokens act as its configured subject, whatever they claim.
        let legacy = mint(
            b"legacy-secret-bytes",
            &TokenKind::Service {
                subject: "backstage-server".into(),
            },
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            auth.authenticate_token(&legacy).await.unwrap(),
            Principal::Service {
                subject: "external:old".into()
            }
        );
        let forged = mint(
            b"some-other-secret",
            &TokenKind::Service {
                subject: "x".into(),
            },
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        assert!(auth.authenticate_token(&forged).await.is_err());
    }
}
