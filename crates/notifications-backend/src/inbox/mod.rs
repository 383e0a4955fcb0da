//! The web inbox the binary serves (beyond upstream): how people sign in (`session.rs`: links
//! and session cookies; `ambient.rs`: those cookies and a trusted proxy's header as credentials
//! of the API, with the checks they need), its pages (`pages.rs`), and the inbox page with its
//! assets (`app.rs`).

mod ambient;
mod app;
mod pages;
mod session;

use std::sync::Arc;

use actix_web::web;
pub use ambient::{ambient_principal, has_bearer, request_allowed};
pub use session::Sessions;

use crate::config::{Config, TrustedProxy};
use crate::store::Store;

/// The pages, the inbox's assets and its Markdown bodies.
pub fn configure(cfg: &mut web::ServiceConfig) {
    pages::configure(cfg);
    app::configure(cfg);
}

/// What signing in to the web inbox takes; shared by the pages and the API's authentication.
#[derive(Debug)]
pub struct WebAuth {
    pub sessions: Sessions,
    pub proxy: Option<TrustedProxy>,
    /// Reached over HTTPS (served so, or `backend.baseUrl` says so behind a TLS proxy): the
    /// session cookie is `Secure`, and named `__Host-...` so that no other host or plain-HTTP
    /// answer can set it.
    pub secure: bool,
    /// `backend.baseUrl`'s origin, accepted in `Origin` beside the request's own.
    base_origin: String,
    /// The scheme this server serves: a request's own origin is `{scheme}://{Host}`.
    scheme: &'static str,
    /// Where notifications' relative links lead: the Backstage app (`app.baseUrl`).
    app_base_url: url::Url,
    store: Store,
}

impl WebAuth {
    pub fn new(config: &Config, user_keys: &[Vec<u8>], store: Store) -> Arc<Self> {
        let web = &config.notifications.web;
        let tls = config.backend.https.is_some();
        Arc::new(Self {
            sessions: Sessions::new(user_keys, web.session_ttl),
            proxy: web.trusted_proxy.clone(),
            secure: tls || config.backend.base_url.scheme() == "https",
            base_origin: config.backend.base_url.origin().ascii_serialization(),
            scheme: if tls { "https" } else { "http" },
            app_base_url: config.app.base_url.clone(),
            store,
        })
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-notifications_session"
        } else {
            "notifications_session"
        }
    }
}
