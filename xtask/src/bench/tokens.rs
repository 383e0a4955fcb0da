//! User tokens for the scenarios that act as users (readers, subscribers):
//! HS256 Backstage user tokens, signed with a secret the scenario adds to
//! the server's `notifications.userTokenKeys` (service keys do not verify
//! user tokens).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// 32 bytes; the server wants at least 16.
const SECRET: &[u8; 32] = b"bench-signals-hs256-secret-32byt";

/// The `typ` header of Backstage user tokens.
const USER_TOKEN_TYPE: &str = "vnd.backstage.user";

/// The configuration under which the server accepts `user_token`s.
pub fn config() -> Value {
    json!({"notifications": {"userTokenKeys": [
        {"secret": base64::engine::general_purpose::STANDARD.encode(SECRET)}
    ]}})
}

/// A Backstage user token for `user_ref`, valid for an hour.
pub fn user_token(user_ref: &str) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(USER_TOKEN_TYPE.to_owned());
    let claims = json!({"sub": user_ref, "ent": [user_ref], "iat": now, "exp": now + 3600});
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET))
        .map_err(|e| format!("could not sign a user token: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_a_valid_key_for_the_server() {
        let config = config();
        let secret = config["notifications"]["userTokenKeys"][0]["secret"]
            .as_str()
            .unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .unwrap();
        assert_eq!(decoded, SECRET);
        assert!(decoded.len() >= 16);
    }

    #[test]
    fn user_tokens_are_backstage_user_tokens() {
        let token = user_token("user:default/subscriber-00001").unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.typ.as_deref(), Some(USER_TOKEN_TYPE));
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(SECRET),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "user:default/subscriber-00001");
    }
}
