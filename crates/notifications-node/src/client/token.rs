use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::ClientError;

/// Why a [`TokenProvider`] could not give a token.
pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

/// Where the bearer token of each request comes from. Asked before every attempt, so a
/// provider may refresh expiring tokens.
#[async_trait]
pub trait TokenProvider: Send + Sync + 'static {
    async fn token(&self) -> Result<String, TokenError>;
}

/// One token for every request (e.g. a static `externalAccess` token).
pub struct StaticToken(String);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

#[async_trait]
impl TokenProvider for StaticToken {
    async fn token(&self) -> Result<String, TokenError> {
        Ok(self.0.clone())
    }
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

/// Signs service tokens with an HS256 key of the backend (`backend.auth.keys[].secret`), as
/// the backend's `token --service SUBJECT` command does: the subject becomes the origin of
/// what is sent. A fresh short-lived token is signed for every request.
pub struct ServiceTokenSigner {
    key: EncodingKey,
    subject: String,
}

/// The backend refuses shorter keys (they can be guessed from any token).
const MIN_KEY_BYTES: usize = 16;
/// Long enough for one request and its retries, short enough to be useless when leaked.
const TOKEN_TTL: Duration = Duration::from_secs(300);

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
        Ok(Self {
            key: EncodingKey::from_secret(secret),
            subject,
        })
    }

    /// `secret`: base64, as in `backend.auth.keys[].secret` and the backend's `auth-key` file.
    pub fn from_base64(secret: &str, subject: impl Into<String>) -> Result<Self, ClientError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|e| ClientError::Config(format!("the signing key is not base64: {e}")))?;
        Self::new(&bytes, subject)
    }

    fn sign(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: &self.subject,
            iat: now,
            exp: now + TOKEN_TTL.as_secs(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, &self.key)
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
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    #[test]
    fn signs_what_the_backend_verifies() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let signer = ServiceTokenSigner::new(secret, "my-ci").unwrap();
        let token = signer.sign().unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"), "not a user token");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(secret),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "my-ci");
        assert!(!format!("{signer:?}").contains("0123"), "no key in Debug");
    }

    #[test]
    fn refuses_short_keys_and_bad_base64() {
        assert!(ServiceTokenSigner::new(b"short", "s").is_err());
        assert!(ServiceTokenSigner::from_base64("not base64!", "s").is_err());
        assert!(ServiceTokenSigner::from_base64("MDEyMzQ1Njc4OWFiY2RlZg==", "").is_err());
        assert!(ServiceTokenSigner::from_base64("MDEyMzQ1Njc4OWFiY2RlZg==", "s").is_ok());
    }
}
