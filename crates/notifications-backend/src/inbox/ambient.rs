//! Credentials the browser sends by itself: the session cookie, and a trusted proxy's header.
//! Being sent by itself, such a credential also rides on requests other sites make the browser
//! send: a request authenticated by one must come from this service's own pages.

use actix_web::HttpRequest;
use actix_web::http::{Method, header};

use super::WebAuth;
use crate::auth::{Principal, TokenKind};

/// Whether the request carries a bearer token (or an `Authorization` header that cannot be
/// read): then it is authenticated by that alone. Another scheme (the `Basic` credentials an
/// authenticating proxy may pass on) leaves the cookie and the proxy's header to be read.
pub fn has_bearer(req: &HttpRequest) -> bool {
    req.headers().get(header::AUTHORIZATION).is_some_and(|v| {
        v.to_str().map_or(true, |v| {
            v.trim_start()
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
        })
    })
}

/// The user a request's trusted proxy header or session cookie names, if any.
pub fn ambient_principal(req: &HttpRequest, web: &WebAuth) -> Option<Principal> {
    let user = proxy_user(req, web).or_else(|| {
        let cookie = req.cookie(web.cookie_name())?;
        web.sessions
            .read_session(cookie.value())
            .map(|u| u.to_string())
    })?;
    // The checks of a user token's subject (a user ref, at most 255 characters, no NUL).
    Principal::try_from(TokenKind::User {
        ownership_refs: vec![user.clone()],
        user_ref: user,
    })
    .ok()
}

/// The user named by the trusted proxy's header, when the request comes from the proxy and
/// the header is there once (a proxy that appends instead of replacing leaves the client's
/// value beside its own).
fn proxy_user(req: &HttpRequest, web: &WebAuth) -> Option<String> {
    let proxy = web.proxy.as_ref()?;
    let peer = req.peer_addr()?.ip().to_canonical();
    if !proxy.addresses.iter().any(|net| net.contains(&peer)) {
        return None;
    }
    let mut values = req.headers().get_all(proxy.header.as_str());
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let name = value.to_str().ok()?.trim();
    if name.is_empty() || name.contains(['/', ':']) {
        return None;
    }
    Some(format!("user:{}/{name}", proxy.namespace))
}

/// Whether a request authenticated by an ambient credential may go on: not when the browser
/// says another site sent it (`Sec-Fetch-Site`), not when its `Origin` is another; and a write
/// (any method but GET, HEAD, OPTIONS) must name this service as its `Origin`.
pub fn request_allowed(req: &HttpRequest, web: &WebAuth) -> bool {
    let site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return false;
    }
    match req.headers().get(header::ORIGIN) {
        Some(origin) => origin.to_str().is_ok_and(|o| own_origin(req, web, o)),
        None => matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS),
    }
}

/// `backend.baseUrl`'s origin, or the request's own: the scheme served and its `Host` (not a
/// forwarded host: a page may not choose that).
fn own_origin(req: &HttpRequest, web: &WebAuth, origin: &str) -> bool {
    if origin == web.base_origin {
        return true;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    host.is_some_and(|host| {
        origin
            .strip_prefix(web.scheme)
            .and_then(|rest| rest.strip_prefix("://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(&host))
    })
}
