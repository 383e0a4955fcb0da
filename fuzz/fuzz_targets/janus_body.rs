//! Janus create bodies, from bytes to the request the service stores: never a panic; what the
//! body parser passes on is an object or an array; a body the schema accepts deserialises; and an
//! action link the service accepts leads to an http(s) page.
//!
//! Input: one byte whose low bit says whether the content type is JSON, then the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use notifications_backend::fuzzing::{janus_body, janus_create_body};
use notifications_backend::testing::service::link::{resolve_link, validate_link};
use notifications_common::JanusCreateRequest;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let Ok(value) = janus_body(body, flags & 1 == 1) else {
        return;
    };
    assert!(value.is_object() || value.is_array(), "{value}");
    if janus_create_body(&value).is_err() {
        return;
    }
    let request: JanusCreateRequest = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("schema-valid body {value} does not deserialise: {e}"));
    let base = Url::parse("http://localhost:3000/app").unwrap();
    for action in request.actions.iter().filter(|a| !a.url.is_empty()) {
        if validate_link(&action.url, &base).is_ok() {
            let resolved = resolve_link(&action.url, &base).unwrap();
            assert!(
                matches!(resolved.scheme(), "http" | "https"),
                "{:?} accepted as {resolved}",
                action.url
            );
        }
    }
});
