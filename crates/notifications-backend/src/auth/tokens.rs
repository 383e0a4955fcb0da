//! HS256 tokens: minting (the `token` command) and verifying; and the claims and checks every
//! signed token shares.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use notifications_common::{EntityRef, UserRef};
use serde::{Deserialize, Serialize};

/// The `typ` header Backstage gives user tokens; anything else is a service token.
pub const USER_TOKEN_TYPE: &str = "vnd.backstage.user";
/// Backstage's legacy server-to-server tokens say this subject; upstream treats them as this one.
const LEGACY_SERVER_SUBJECT: &str = "backstage-server";
const LEGACY_SERVER_ORIGIN: &str = "external:backstage-plugin";
/// Tolerated clock difference between the issuer and this server.
const CLOCK_SKEW_SECONDS: u64 = 60;

/// Who a token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    User {
        user_ref: String,
        ownership_refs: Vec<String>,
    },
    Service {
        subject: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ent: Vec<String>,
    /// Checked by [`Validation`] when required; optional for `externalAccess` JWKS tokens.
    #[serde(default)]
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// A plugin token's on-behalf-of user token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obo: Option<String>,
}

#[derive(Debug)]
pub struct Verified {
    pub kind: TokenKind,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("Invalid token: not a well-formed token")]
    Malformed,
    #[error("Invalid token: signature does not match any configured key")]
    BadSignature,
    #[error("Token has expired")]
    Expired,
    #[error("Invalid token: {0}")]
    Invalid(String),
}

/// Signs a token for `kind`, valid for `ttl`.
pub fn mint(secret: &[u8], kind: &TokenKind, ttl: Duration) -> Result<String, TokenError> {
    let now = jsonwebtoken::get_current_timestamp();
    let (typ, claims) = match kind {
        TokenKind::User {
            user_ref,
            ownership_refs,
        } => (
            USER_TOKEN_TYPE,
            Claims {
                sub: user_ref.clone(),
                ent: ownership_refs.clone(),
                exp: now + ttl.as_secs(),
                iat: Some(now),
                obo: None,
            },
        ),
        TokenKind::Service { subject } => (
            "JWT",
            Claims {
                sub: subject.clone(),
                ent: vec![],
                exp: now + ttl.as_secs(),
                iat: Some(now),
                obo: None,
            },
        ),
    };
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
        .map_err(|e| TokenError::Invalid(e.to_string()))
}

/// Whether the header says a user token (else a service token).
pub fn is_user_token(header: &Header) -> bool {
    header.typ.as_deref() == Some(USER_TOKEN_TYPE)
}

/// Verifies `token`, whose header is `header`, against one secret.
pub fn verify(token: &str, header: &Header, secret: &[u8]) -> Result<Verified, TokenError> {
    let mut validation = validation(Algorithm::HS256);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let claims = decode(token, &DecodingKey::from_secret(secret), &validation)?;
    let kind = if is_user_token(header) {
        user_kind(&claims)?
    } else if claims.sub.trim().is_empty() {
        return Err(TokenError::Invalid("empty subject".into()));
    } else if claims.sub == LEGACY_SERVER_SUBJECT {
        TokenKind::Service {
            subject: LEGACY_SERVER_ORIGIN.to_owned(),
        }
    } else {
        TokenKind::Service {
            subject: claims.sub,
        }
    };
    Ok(Verified { kind })
}

/// What every signed token is checked with: `alg` only, the clock skew, `nbf` when present.
pub fn validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = CLOCK_SKEW_SECONDS;
    validation.validate_nbf = true;
    validation
}

/// Checks the signature and `validation`, and reads the claims.
pub fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Claims, TokenError> {
    jsonwebtoken::decode::<Claims>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::Invalid("not valid yet".into()),
            ErrorKind::MissingRequiredClaim(claim) => {
                TokenError::Invalid(format!("missing claim '{claim}'"))
            }
            ErrorKind::InvalidAudience => TokenError::Invalid("wrong audience".into()),
            ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer".into()),
            ErrorKind::InvalidAlgorithm => TokenError::Invalid("algorithm not allowed".into()),
            _ => TokenError::Malformed,
        })
}

/// The user a user token's subject names, canonical.
pub fn user_ref(subject: &str) -> Result<UserRef, TokenError> {
    let user: UserRef = subject.parse().map_err(|_| {
        TokenError::Invalid("the subject of a user token must be a user entity ref".into())
    })?;
    // The ref is stored with what the user does (settings, read marks): it must fit the columns.
    if user.as_str().chars().count() > 255 || user.as_str().contains('\0') {
        return Err(TokenError::Invalid(
            "the user entity ref is too long or contains NUL".into(),
        ));
    }
    Ok(user)
}

/// The user a user token speaks for, and the refs they own: themselves and `ent`.
pub fn user_kind(claims: &Claims) -> Result<TokenKind, TokenError> {
    let user_ref = String::from(user_ref(&claims.sub)?);
    let mut ownership_refs = vec![user_ref.clone()];
    for ent in &claims.ent {
        let r = EntityRef::parse(ent)
            .map_err(|_| TokenError::Invalid(format!("invalid ownership ref '{ent}'")))?
            .canonical();
        if !ownership_refs.contains(&r) {
            ownership_refs.push(r);
        }
    }
    Ok(TokenKind::User {
        user_ref,
        ownership_refs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn verify_hs256(token: &str, secret: &[u8]) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        verify(token, &header, secret)
    }

    #[test]
    fn user_token_round_trip_canonicalises_refs() {
        let token = mint(
            KEY,
            &TokenKind::User {
                user_ref: "User:Default/Jane".into(),
                ownership_refs: vec!["group:team-a".into()],
            },
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            verify_hs256(&token, KEY).unwrap().kind,
            TokenKind::User {
                user_ref: "user:default/jane".into(),
                ownership_refs: vec!["user:default/jane".into(), "group:default/team-a".into()]
            }
        );
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let claims = Claims {
            sub: "svc".into(),
            ent: vec![],
            exp: 1_000,
            iat: None,
            obo: None,
        };
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert!(matches!(verify_hs256(&old, KEY), Err(TokenError::Expired)));
        let token = mint(
            KEY,
            &TokenKind::Service {
                subject: "svc".into(),
            },
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(matches!(
            verify_hs256(&token, b"another key"),
            Err(TokenError::BadSignature)
        ));
        assert!(matches!(
            verify_hs256("not.a.token", KEY),
            Err(TokenError::Malformed)
        ));
    }

    #[test]
    fn tokens_without_expiry_are_refused() {
        #[derive(Serialize)]
        struct NoExp {
            sub: String,
        }
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoExp { sub: "svc".into() },
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert!(verify_hs256(&t, KEY).is_err());
    }

    #[test]
    fn user_tokens_need_a_user_subject() {
        let token = mint(
            KEY,
            &TokenKind::User {
                user_ref: "group:default/team".into(),
                ownership_refs: vec![],
            },
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(matches!(
            verify_hs256(&token, KEY),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn legacy_backstage_server_tokens_get_upstreams_origin() {
        let token = mint(
            KEY,
            &TokenKind::Service {
                subject: "backstage-server".into(),
            },
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            verify_hs256(&token, KEY).unwrap().kind,
            TokenKind::Service {
                subject: "external:backstage-plugin".into()
            }
        );
    }
}
