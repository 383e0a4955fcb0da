//! Bearer tokens through the authenticator, with tokens signed here so that header and claims
//! reach the checks behind the signature: never a panic; a token signed with no configured key
//! is refused; a user principal comes only from a user-typed token signed with the user key, and
//! names a canonical user ref that heads its ownership refs, each canonical and listed once; a
//! service principal comes only from the service key and has a subject.
//!
//! Input: one byte choosing the signer (0: the service key, 1: the user key, 2: another key,
//! 3: none, the rest is the token as sent), then the header JSON, a NUL byte, and the claims JSON.

#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;
use notifications_backend::config::{AuthConfig, Config};
use notifications_backend::testing::auth::{Authenticator, Principal, SigningKeys};
use notifications_common::EntityRef;
use sha2::Sha256;

const SERVICE_KEY: &[u8] = b"fuzz-service-key-0123456789abcdef";
const USER_KEY: &[u8] = b"fuzz-user-key-0123456789abcdefghi";
const OTHER_KEY: &[u8] = b"fuzz-unknown-key-0123456789abcdef";

struct Harness {
    runtime: tokio::runtime::Runtime,
    auth: Authenticator,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let keys = SigningKeys {
        service: vec![SERVICE_KEY.to_vec()],
        user: vec![USER_KEY.to_vec()],
    };
    let config = AuthConfig {
        keys: vec![],
        external_access: vec![],
    };
    Harness {
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
        auth: Authenticator::new(keys, &config, &Config::default().discovery).unwrap(),
    }
});

fn sign(header: &[u8], claims: &[u8], key: &[u8]) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(signed.as_bytes());
    format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn assert_canonical_ref(r: &str) {
    let parsed = EntityRef::parse(r).unwrap_or_else(|e| panic!("{r:?}: {e}"));
    assert_eq!(parsed.canonical(), r);
}

fuzz_target!(|data: &[u8]| {
    let Some((&signer, rest)) = data.split_first() else {
        return;
    };
    let signer = signer % 4;
    let token = match signer {
        3 => match std::str::from_utf8(rest) {
            Ok(token) => token.to_owned(),
            Err(_) => return,
        },
        _ => {
            let (header, claims) = match rest.iter().position(|&b| b == 0) {
                Some(nul) => (&rest[..nul], &rest[nul + 1..]),
                None => (rest, &b"{}"[..]),
            };
            sign(
                header,
                claims,
                [SERVICE_KEY, USER_KEY, OTHER_KEY][usize::from(signer)],
            )
        }
    };
    // Other algorithms are verified with published keys fetched over the network: not here.
    let Ok(header) = jsonwebtoken::decode_header(&token) else {
        return;
    };
    if header.alg != Algorithm::HS256 {
        return;
    }
    let h = &*HARNESS;
    let result = h
        .runtime
        .block_on(h.auth.authenticate_header(Some(&format!("Bearer {token}"))));
    match result {
        Err(_) => {}
        Ok(Principal::User {
            user_ref,
            ownership_refs,
        }) => {
            assert_eq!(
                signer, 1,
                "a user principal from a token not signed with the user key"
            );
            assert_eq!(header.typ.as_deref(), Some("vnd.backstage.user"));
            let user_ref = user_ref.as_str();
            assert_canonical_ref(user_ref);
            assert!(EntityRef::parse(user_ref).unwrap().is_kind("user"));
            assert_eq!(ownership_refs.first().map(String::as_str), Some(user_ref));
            for (i, r) in ownership_refs.iter().enumerate() {
                assert_canonical_ref(r);
                assert!(!ownership_refs[..i].contains(r), "{r:?} listed twice");
            }
        }
        Ok(Principal::Service { subject }) => {
            assert_eq!(
                signer, 0,
                "a service principal from a token not signed with the service key"
            );
            assert_ne!(header.typ.as_deref(), Some("vnd.backstage.user"));
            assert!(!subject.trim().is_empty());
        }
    }
});
