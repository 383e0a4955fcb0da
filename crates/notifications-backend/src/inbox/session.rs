//! The web inbox's credentials: one-time sign-in links and session cookies. Both are HS256
//! tokens under keys derived from the user-token keys, one per use: a link is not a session, a
//! session cookie is no bearer token, and a user token is neither (each fails the others' keys
//! and audiences).

use std::time::Duration;

use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use notifications_common::UserRef;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;

const LINK_AUDIENCE: &str = "notifications-sign-in-link";
const SESSION_AUDIENCE: &str = "notifications-session";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    exp: u64,
    /// A link's id, recorded when it is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

/// A sign-in link as read: whom it signs in, its id, and when it expires (read without leeway:
/// after that instant no instance takes it, so its recorded use may be forgotten then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub user: UserRef,
    pub id: String,
    pub expires: OffsetDateTime,
}

/// Why a link (or a session) is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this sign-in link has expired")]
    Expired,
    #[error("this is not a valid sign-in link")]
    Invalid,
}

/// Signs and reads links and sessions.
pub struct Sessions {
    /// Per user-token key (the first signs; all verify, for key rotation).
    link_keys: Vec<Vec<u8>>,
    session_keys: Vec<Vec<u8>>,
    pub session_ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("session_ttl", &self.session_ttl)
            .finish_non_exhaustive()
    }
}

/// HMAC-SHA256 of `label` under `key`: a key of its own for each use of a user-token key.
/// (HMAC takes keys of any length: `None` does not happen.)
fn derive(key: &[u8], label: &str) -> Option<Vec<u8>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(label.as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

impl Sessions {
    pub fn new(user_keys: &[Vec<u8>], session_ttl: Duration) -> Self {
        let derived = |label| user_keys.iter().filter_map(|k| derive(k, label)).collect();
        Self {
            link_keys: derived("notifications web sign-in link v1"),
            session_keys: derived("notifications web session v1"),
            session_ttl,
        }
    }

    /// A link token for `user`, valid once for `ttl`.
    pub fn mint_link(&self, user: &UserRef, ttl: Duration) -> Result<String, String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        mint(&self.link_keys, user, LINK_AUDIENCE, ttl, Some(id))
    }

    /// Whom a link token signs in (not whether it was used: the store knows).
    pub fn read_link(&self, token: &str) -> Result<Link, LinkError> {
        let claims = read(&self.link_keys, token, LINK_AUDIENCE)?;
        let user = claims.sub.parse().map_err(|_| LinkError::Invalid)?;
        let id = claims.jti.filter(|id| !id.is_empty() && id.len() <= 64);
        let expires = i64::try_from(claims.exp)
            .ok()
            .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok());
        match (id, expires) {
            (Some(id), Some(expires)) => Ok(Link { user, id, expires }),
            _ => Err(LinkError::Invalid),
        }
    }

    /// A session cookie's value for `user`, valid for the session's time.
    pub fn mint_session(&self, user: &UserRef) -> Result<String, String> {
        mint(
            &self.session_keys,
            user,
            SESSION_AUDIENCE,
            self.session_ttl,
            None,
        )
    }

    /// The user of a session cookie's value, if it is valid.
    pub fn read_session(&self, value: &str) -> Option<UserRef> {
        let claims = read(&self.session_keys, value, SESSION_AUDIENCE).ok()?;
        claims.sub.parse().ok()
    }
}

fn mint(
    keys: &[Vec<u8>],
    user: &UserRef,
    audience: &str,
    ttl: Duration,
    jti: Option<String>,
) -> Result<String, String> {
    let key = keys.first().ok_or("no user-token key to sign with")?;
    let claims = Claims {
        sub: user.to_string(),
        aud: audience.to_owned(),
        exp: jsonwebtoken::get_current_timestamp() + ttl.as_secs(),
        jti,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .map_err(|e| e.to_string())
}

/// Without leeway: these tokens are signed by this service's own instances (and its command
/// line), and a link's recorded use must outlive every instance's acceptance of it.
fn read(keys: &[Vec<u8>], token: &str, audience: &str) -> Result<Claims, LinkError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    let mut expired = false;
    for key in keys {
        match jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                expired = true;
            }
            Err(_) => {}
        }
    }
    Err(if expired {
        LinkError::Expired
    } else {
        LinkError::Invalid
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(key: &[u8]) -> Sessions {
        Sessions::new(&[key.to_vec()], Duration::from_secs(3600))
    }

    #[test]
    fn links_and_sessions_are_each_their_own() {
        let s = sessions(b"a-user-token-key-of-some-length");
        let jane: UserRef = "user:default/jane".parse().unwrap();
        let link = s.mint_link(&jane, Duration::from_secs(600)).unwrap();
        let read = s.read_link(&link).unwrap();
        assert_eq!(read.user, jane);
        assert_eq!(read.id.len(), 32);
        assert_ne!(
            s.read_link(&s.mint_link(&jane, Duration::from_secs(600)).unwrap())
                .unwrap()
                .id,
            read.id,
            "each link has its own id"
        );
        let session = s.mint_session(&jane).unwrap();
        assert_eq!(s.read_session(&session), Some(jane.clone()));
        // A link is no session, a session no link.
        assert_eq!(s.read_session(&link), None);
        assert_eq!(s.read_link(&session), Err(LinkError::Invalid));
        // Another key's tokens are nothing here; a user token signed with the user key itself
        // is neither.
        let other = sessions(b"another-user-token-key-entirely");
        assert_eq!(other.read_session(&session), None);
        assert_eq!(other.read_link(&link), Err(LinkError::Invalid));
        let user_token = crate::auth::mint(
            b"a-user-token-key-of-some-length",
            &crate::auth::TokenKind::User {
                user_ref: jane.to_string(),
                ownership_refs: vec![],
            },
            Duration::from_secs(600),
        )
        .unwrap();
        assert_eq!(s.read_session(&user_token), None);
        assert_eq!(s.read_link(&user_token), Err(LinkError::Invalid));
        assert_eq!(s.read_link("not a token"), Err(LinkError::Invalid));
    }

    #[test]
    fn expired_links_say_so() {
        let s = sessions(b"a-user-token-key-of-some-length");
        let jane: UserRef = "user:default/jane".parse().unwrap();
        let claims = Claims {
            sub: jane.to_string(),
            aud: LINK_AUDIENCE.into(),
            exp: jsonwebtoken::get_current_timestamp() - 1,
            jti: Some("x".into()),
        };
        let key = derive(
            b"a-user-token-key-of-some-length",
            "notifications web sign-in link v1",
        )
        .unwrap();
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&key),
        )
        .unwrap();
        assert_eq!(s.read_link(&old), Err(LinkError::Expired));
    }
}
