//! CORS for browsers on other origins (a Backstage frontend on its own host), from `backend.cors`.

use actix_cors::Cors;
use actix_web::middleware::Condition;

use crate::config::CorsConfig;

/// Backstage's default methods when `backend.cors.methods` is not set.
const DEFAULT_METHODS: [&str; 6] = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"];

/// The CORS layer; a no-op without configuration (no CORS headers, as Backstage).
pub fn layer(config: Option<&CorsConfig>) -> Condition<Cors> {
    let Some(config) = config else {
        return Condition::new(false, Cors::default());
    };
    let origins = config.clone();
    let mut cors = Cors::default()
        .allowed_origin_fn(move |origin, _| origin.to_str().is_ok_and(|o| origins.allows(o)));
    cors = if config.methods.is_empty() {
        cors.allowed_methods(DEFAULT_METHODS)
    } else {
        cors.allowed_methods(config.methods.iter().map(String::as_str))
    };
    cors = if config.allowed_headers.is_empty() {
        // Like the `cors` package: allow what the preflight asks for.
        cors.allow_any_header()
    } else {
        cors.allowed_headers(config.allowed_headers.iter().map(String::as_str))
    };
    if !config.exposed_headers.is_empty() {
        cors = cors.expose_headers(config.exposed_headers.iter().map(String::as_str));
    }
    if config.credentials {
        cors = cors.supports_credentials();
    }
    Condition::new(true, cors.max_age(config.max_age_seconds))
}
