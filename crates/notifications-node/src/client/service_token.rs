//! [`ServiceTokenSigner`]: HS256 service tokens, signed here with HMAC-SHA256 rather than a JWT
//! library, whose other algorithms (and their crates) a sending service has no use for.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::ClientError;
use super::token::{TokenError, TokenProvider};

/// Signs service tokens with an HS256 key of the backend (`backend.auth.keys[].secret`), as
/// the backend's `token --service SUBJECT` command does: the subject becomes the origin of
/// what is sent. A fresh short-lived token is signed for every request.
///
/// ```no_run
/// # fn run() -> Result<(), notifications_node::ClientError> {
/// use notifications_node::{NotificationService, ServiceTokenSigner};
///
/// let notifications = NotificationService::builder("http://localhost:7007/api/notifications")
///     .token_provider(ServiceTokenSigner::from_base64("<backend.auth.keys[0].secret>", "my-service")?)
///     .build()?;
/// # Ok(()) }
/// ```
pub struct ServiceTokenSigner {
    /// Keyed once; each token signs with a clone.
    mac: Hmac<Sha256>,
    subject: String,
}

/// The backend refuses shorter keys (they can be guessed from any token).
const MIN_KEY_BYTES: usize = 16;
/// Long enough for one request and its retries, short enough to be useless when leaked.
const TOKEN_TTL: Duration = Duration::from_secs(300);
/// The JOSE header, in the field order jsonwebtoken wrote it: the same tokens, byte for byte.
/// `typ` is not Backstage's user token type, so the backend takes the token for a service's.
const HEADER: &str = r#"{"typ":"JWT","alg":"HS256"}"#;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

impl ServiceTokenSigner {
    /// `secret`: the key's bytes, at least 16.
    pub fn new(secret: &[u8], subject: impl Into<String>) -> Result<Self, ClientError> {
        let subject = subject.into();
        if secret.len() < MIN_KEY_BYTES {
            return Err(ClientError::Config(format!(
                "the signing key is {} bytes, at least {MIN_KEY_BYTES} are needed",
                secret.len()
            )));
        }
        if subject.trim().is_empty() {
            return Err(ClientError::Config(
                "a service token needs a subject".into(),
            ));
        }
        let mac = Hmac::new_from_slice(secret)
            .map_err(|e| ClientError::Config(format!("the signing key: {e}")))?;
        Ok(Self { mac, subject })
    }

    /// `secret`: base64, as in `backend.auth.keys[].secret` and the backend's `auth-key` file.
    pub fn from_base64(secret: &str, subject: impl Into<String>) -> Result<Self, ClientError> {
        let bytes = STANDARD
            .decode(secret.trim())
            .map_err(|e| ClientError::Config(format!("the signing key is not base64: {e}")))?;
        Self::new(&bytes, subject)
    }

    fn sign(&self) -> Result<String, serde_json::Error> {
        // A clock before 1970 gives a token already expired: the backend says so.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sign_at(now)
    }

    /// The token issued at `now` (seconds since the epoch).
    fn sign_at(&self, now: u64) -> Result<String, serde_json::Error> {
        let claims = serde_json::to_vec(&Claims {
            sub: &self.subject,
            iat: now,
            exp: now + TOKEN_TTL.as_secs(),
        })?;
        let mut token = URL_SAFE_NO_PAD.encode(HEADER);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
        Ok(token)
    }
}

#[async_trait]
impl TokenProvider for ServiceTokenSigner {
    async fn token(&self) -> Result<String, TokenError> {
        Ok(self.sign()?)
    }
}

impl std::fmt::Debug for ServiceTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokenSigner")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn signs_what_the_backend_verifies() {
        let signer = ServiceTokenSigner::new(SECRET, "my-ci").unwrap();
        let token = signer.sign().unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"), "not a user token");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(SECRET),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "my-ci");
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert_eq!(exp - iat, TOKEN_TTL.as_secs());
        let now = jsonwebtoken::get_current_timestamp();
        assert!(iat.abs_diff(now) <= 5, "issued now: {iat} vs {now}");
        assert!(!format!("{signer:?}").contains("0123"), "no key in Debug");
    }

    #[test]
    fn tokens_are_the_ones_jsonwebtoken_signed() {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("JWT".into());
        let key = EncodingKey::from_secret(SECRET);
        // Subjects whose JSON needs escaping, and claims that need base64url's `-` and `_`.
        for (subject, now) in [
            ("my-ci", 1_700_000_000),
            ("plugin:\"quoted\"/ünïcode\\", 0),
            ("external:a>b?c~", u64::MAX - 300),
        ] {
            let signer = ServiceTokenSigner::new(SECRET, subject).unwrap();
            let claims = Claims {
                sub: subject,
                iat: now,
                exp: now + TOKEN_TTL.as_secs(),
            };
            assert_eq!(
                signer.sign_at(now).unwrap(),
                jsonwebtoken::encode(&header, &claims, &key).unwrap(),
                "{subject} at {now}"
            );
        }
    }

    #[test]
    fn refuses_short_keys_and_bad_base64() {
        assert!(ServiceTokenSigner::new(b"short", "s").is_err());
        assert!(ServiceTokenSigner::from_base64("not base64!", "s").is_err());
        assert!(ServiceTokenSigner::from_base64("MDEyMzQ1Njc4OWFiY2RlZg==", "").is_err());
        assert!(ServiceTokenSigner::from_base64("MDEyMzQ1Njc4OWFiY2RlZg==", "s").is_ok());
    }
}
