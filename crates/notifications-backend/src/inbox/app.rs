//! The inbox itself: one HTML page, one script and one stylesheet, embedded in the binary (no
//! CDN, no build step), and each notification's Markdown body rendered here. The script reads
//! and writes through the plugin's API, signed in by the session cookie or the proxy.

use std::sync::LazyLock;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use notifications_common::{NotificationId, UserRef};

use super::{WebAuth, ambient_principal, has_bearer, request_allowed};
use crate::auth::Principal;
use crate::html::{MARKDOWN_BODY_KEY, Reader, escape, markdown_to_html};
use crate::service::link::resolve_link;

const SHELL: &str = include_str!("../../assets/inbox.html");
const SCRIPT: &str = include_str!("../../assets/inbox.js");
const STYLE: &str = include_str!("../../assets/inbox.css");
const ICON: &str = include_str!("../../assets/icon.svg");

/// The page's own script, style and API only. Markdown images from elsewhere are not loaded
/// (they would tell their host who reads what, and when).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";

/// Changes with the assets: their URLs carry it, so browsers may keep them for good.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    (SCRIPT, STYLE, ICON).hash(&mut hasher);
    format!("{:016x}", hasher.finish())
});

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/assets/inbox.js", web::get().to(script))
        .route("/assets/inbox.css", web::get().to(style))
        .route("/assets/icon.svg", web::get().to(icon))
        .route("/inbox/body/{id}", web::get().to(body));
}

/// The signed-in user. A request with a bearer token is that token's alone, as on the API
/// (the page would show an inbox its API calls then refuse).
pub(super) fn user_of(req: &HttpRequest, web: &WebAuth) -> Option<UserRef> {
    if has_bearer(req) {
        return None;
    }
    match ambient_principal(req, web) {
        Some(Principal::User { user_ref, .. }) => Some(user_ref),
        _ => None,
    }
}

/// The page, for `user`. The links its notifications carry are relative to the Backstage app
/// (`app.baseUrl`), as in mail: the script resolves them as `resolve_link` does, against this
/// base with its trailing `/`.
pub(super) fn shell(user: &UserRef, web: &WebAuth) -> HttpResponse {
    let base = resolve_link("", &web.app_base_url).unwrap_or_else(|_| web.app_base_url.clone());
    let html = SHELL
        .replace("{{version}}", &VERSION)
        .replace("{{user}}", &escape(user.as_str()))
        .replace("{{appBaseUrl}}", &escape(base.as_str()));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(html)
}

/// Kept for good under the URL of this version only: during a rolling upgrade, an instance
/// asked for another version's URL answers what it has, which must not stay in caches. Any
/// other query is no error: the file is the same.
fn asset(req: &HttpRequest, content_type: &'static str, body: &'static str) -> HttpResponse {
    let this_version = url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(key, value)| key == "v" && value == VERSION.as_str());
    let cache = if this_version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(body)
}

async fn script(req: HttpRequest) -> HttpResponse {
    asset(&req, "text/javascript; charset=utf-8", SCRIPT)
}

async fn style(req: HttpRequest) -> HttpResponse {
    asset(&req, "text/css; charset=utf-8", STYLE)
}

async fn icon(req: HttpRequest) -> HttpResponse {
    asset(&req, "image/svg+xml", ICON)
}

fn refusal(status: StatusCode, name: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"error": {"name": name, "message": message}}))
}

/// A notification's Markdown body as HTML (raw HTML shown as text, links of other schemes
/// than http(s) and mailto dropped), for the signed-in user's own notifications and
/// broadcasts. Empty when it has none.
async fn body(req: HttpRequest, web: web::Data<WebAuth>, id: web::Path<String>) -> HttpResponse {
    let Some(user) = user_of(&req, &web) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            "Not signed in",
        );
    };
    if !request_allowed(&req, &web) {
        return refusal(
            StatusCode::FORBIDDEN,
            "NotAllowedError",
            "A request signed in by cookie or proxy must come from this service's own pages",
        );
    }
    let not_found = || refusal(StatusCode::NOT_FOUND, "NotFoundError", "Not found");
    let Ok(id) = id.parse::<NotificationId>() else {
        return not_found();
    };
    let notification = match web.store.get_many(&user, vec![id]).await {
        Ok(found) => match found.into_iter().next() {
            Some(n) => n,
            None => return not_found(),
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot read a notification for the web inbox");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableError",
                "The database cannot be reached; try again",
            );
        }
    };
    let html = notification
        .payload
        .metadata
        .as_ref()
        .and_then(|m| m.get(MARKDOWN_BODY_KEY))
        .and_then(|v| v.as_str())
        .map(|md| markdown_to_html(md, &web.app_base_url, Reader::Page))
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header((header::VARY, "Cookie"))
        .body(html)
}
