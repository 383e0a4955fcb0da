//! Tokens signed with published keys, checked as Backstage's `DefaultAuthService` does: user
//! tokens (keys of the `auth` plugin), plugin tokens (keys of the calling plugin) and the
//! `jwks` entries of `backend.auth.externalAccess`.

use jsonwebtoken::{AlgorithmFamily, Header};
use serde::Deserialize;
use url::Url;

use super::jwks::KeyCache;
use super::tokens::{self, Claims, TokenError, USER_TOKEN_TYPE};
use super::{AuthError, Principal};
use crate::config::{Discovery, JwksAccess};

/// The plugin id plugin tokens must be addressed to.
const OWN_PLUGIN_ID: &str = "notifications";
const PLUGIN_TOKEN_TYPE: &str = "vnd.backstage.plugin";
/// What a plugin forwards on behalf of a user; never a bearer token of its own.
const LIMITED_USER_TOKEN_TYPE: &str = "vnd.backstage.limited-user";
/// The audience of the user tokens Backstage's auth plugin issues.
const USER_AUDIENCE: &str = "backstage";
const USER_KEYS_PATH: &str = "/.well-known/jwks.json";
const PLUGIN_KEYS_PATH: &str = "/.backstage/auth/v1/jwks.json";
/// Plugin ids are short; the bound keeps odd subjects out of URLs and logs.
const MAX_PLUGIN_ID_LEN: usize = 64;

pub struct RemoteVerifier {
    keys: KeyCache,
    discovery: Discovery,
    user_keys: Url,
    external: Vec<JwksAccess>,
}

/// What a user token must carry: full user tokens are addressed to `backstage`; the user token
/// a plugin token carries (`obo`) may be a limited one, without audience.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UserToken {
    Bearer,
    OnBehalfOf,
}

impl RemoteVerifier {
    pub fn new(discovery: &Discovery, external: Vec<JwksAccess>) -> Result<Self, reqwest::Error> {
        let user_keys = keys_url(&discovery.base_url("auth"), USER_KEYS_PATH);
        let configured = external.iter().map(|access| access.url.clone());
        Ok(Self {
            keys: KeyCache::new(configured.chain([user_keys.clone()]))?,
            user_keys,
            discovery: discovery.clone(),
            external,
        })
    }

    /// Verifies a token that is not HS256 (whose header is `header`).
    pub async fn verify(&self, token: &str, header: &Header) -> Result<Principal, AuthError> {
        if header.alg.family() == AlgorithmFamily::Hmac {
            return Err(invalid(format!("unsupported algorithm {:?}", header.alg)));
        }
        match header.typ.as_deref() {
            Some(PLUGIN_TOKEN_TYPE) => self.plugin(token, header).await,
            Some(USER_TOKEN_TYPE) => self.user(token, header, UserToken::Bearer).await,
            // Upstream's message.
            Some(LIMITED_USER_TOKEN_TYPE) => {
                Err(AuthError::Invalid("Illegal limited user token".into()))
            }
            _ => self.external(token, header).await,
        }
    }

    async fn user(
        &self,
        token: &str,
        header: &Header,
        kind: UserToken,
    ) -> Result<Principal, AuthError> {
        let mut validation = tokens::validation(header.alg);
        if kind == UserToken::Bearer {
            validation.set_audience(&[USER_AUDIENCE]);
            validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        } else {
            validation.validate_aud = false;
            validation.set_required_spec_claims(&["exp", "sub"]);
        }
        let claims = self
            .decode(token, header, &self.user_keys, &validation)
            .await?;
        require_iat(&claims)?;
        tokens::user_kind(&claims)
            .and_then(Principal::try_from)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    async fn plugin(&self, token: &str, header: &Header) -> Result<Principal, AuthError> {
        // The keys are those of the plugin the token claims to come from: check the claim
        // before it goes into a URL.
        #[derive(Deserialize)]
        struct Subject {
            sub: Option<String>,
        }
        let subject = jsonwebtoken::dangerous::insecure_decode_claims::<Subject>(token)
            .map_err(|_| AuthError::Invalid(TokenError::Malformed.to_string()))?
            .sub
            .filter(|sub| !sub.is_empty())
            .ok_or_else(|| AuthError::Invalid("Invalid plugin token: missing subject".into()))?;
        if !is_plugin_id(&subject) {
            return Err(AuthError::Invalid(
                "Invalid plugin token: forbidden subject format".into(),
            ));
        }
        let keys = keys_url(&self.discovery.base_url(&subject), PLUGIN_KEYS_PATH);
        let mut validation = tokens::validation(header.alg);
        validation.set_audience(&[OWN_PLUGIN_ID]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        let claims = self.decode(token, header, &keys, &validation).await?;
        require_iat(&claims)?;
        match claims.obo {
            // A plugin calling on behalf of a user acts as that user, as upstream.
            Some(user_token) => {
                let user_header = jsonwebtoken::decode_header(&user_token)
                    .ok()
                    .filter(|h| {
                        matches!(
                            h.typ.as_deref(),
                            Some(USER_TOKEN_TYPE | LIMITED_USER_TOKEN_TYPE)
                        ) && h.alg.family() != AlgorithmFamily::Hmac
                    })
                    .ok_or_else(|| {
                        AuthError::Invalid("Invalid user token in plugin token obo claim".into())
                    })?;
                self.user(&user_token, &user_header, UserToken::OnBehalfOf)
                    .await
            }
            None => Ok(Principal::Service {
                subject: format!("plugin:{subject}"),
            }),
        }
    }

    /// Each `jwks` entry in turn; the first that accepts the token wins, as upstream.
    async fn external(&self, token: &str, header: &Header) -> Result<Principal, AuthError> {
        // Upstream's message when nothing recognises a token.
        let mut error = AuthError::Invalid("Illegal token".into());
        for access in &self.external {
            if access
                .algorithms
                .as_ref()
                .is_some_and(|allowed| !allowed.contains(&header.alg))
            {
                error = invalid(format!("algorithm {:?} not allowed", header.alg));
                continue;
            }
            let mut validation = tokens::validation(header.alg);
            // A configured issuer or audience must be present, not just match when present (the
            // library checks only claims a token carries), as upstream's jose does.
            validation.required_spec_claims.clear();
            match &access.audiences {
                Some(audiences) => {
                    validation.set_audience(audiences);
                    validation.required_spec_claims.insert("aud".into());
                }
                None => validation.validate_aud = false,
            }
            if let Some(issuers) = &access.issuers {
                validation.set_issuer(issuers);
                validation.required_spec_claims.insert("iss".into());
            }
            match self.decode(token, header, &access.url, &validation).await {
                Ok(claims) if !claims.sub.is_empty() => {
                    let subject = match &access.subject_prefix {
                        Some(prefix) => format!("external:{prefix}:{}", claims.sub),
                        None => format!("external:{}", claims.sub),
                    };
                    return Ok(Principal::Service { subject });
                }
                Ok(_) => error = invalid("missing subject".into()),
                Err(e) => error = e,
            }
        }
        Err(error)
    }

    /// Checks the signature with the key of `keys` the header names, then `validation`.
    async fn decode(
        &self,
        token: &str,
        header: &Header,
        keys: &Url,
        validation: &jsonwebtoken::Validation,
    ) -> Result<Claims, AuthError> {
        let key = self
            .keys
            .key(keys, header.kid.as_deref(), header.alg)
            .await
            .map_err(|e| invalid(e.to_string()))?;
        tokens::decode(token, &key, validation).map_err(|e| match e {
            TokenError::BadSignature => invalid("signature does not match the signing key".into()),
            other => AuthError::Invalid(other.to_string()),
        })
    }
}

fn invalid(reason: String) -> AuthError {
    AuthError::Invalid(format!("Invalid token: {reason}"))
}

fn require_iat(claims: &Claims) -> Result<(), AuthError> {
    match claims.iat {
        Some(_) => Ok(()),
        None => Err(invalid("missing claim 'iat'".into())),
    }
}

/// Backstage's plugin id alphabet (`[a-z0-9_-]`, either case), bounded.
fn is_plugin_id(id: &str) -> bool {
    id.len() <= MAX_PLUGIN_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `<base>/<path>`, as Backstage joins them (the base has no trailing slash).
fn keys_url(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{path}", url.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_ids_are_checked_before_they_reach_a_url() {
        for ok in ["catalog", "my-plugin", "search_2", "Scaffolder"] {
            assert!(is_plugin_id(ok), "{ok}");
        }
        for bad in [
            "../auth",
            "a/b",
            "a?b",
            "a b",
            "a.b",
            "a%2F",
            "x@evil.example.com",
            &"a".repeat(65),
        ] {
            assert!(!is_plugin_id(bad), "{bad}");
        }
    }

    #[test]
    fn key_urls_join_like_backstage() {
        let base = Url::parse("http://localhost:7007/api/auth").unwrap();
        assert_eq!(
            keys_url(&base, USER_KEYS_PATH).as_str(),
            "http://localhost:7007/api/auth/.well-known/jwks.json"
        );
        let root = Url::parse("http://auth.internal/").unwrap();
        assert_eq!(
            keys_url(&root, PLUGIN_KEYS_PATH).as_str(),
            "http://auth.internal/.backstage/auth/v1/jwks.json"
        );
    }
}
