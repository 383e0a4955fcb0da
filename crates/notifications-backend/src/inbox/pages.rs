//! The pages: `/`, `/inbox` and `/settings` (the inbox, or how to sign in), `/signin` (a
//! one-time link's page, which asks before it signs in: mail scanners and link previews open
//! links too), and `/signout`. All but the inbox are plain HTML without script, under a
//! Content-Security-Policy that allows none.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::app::{shell, user_of};
use super::session::LinkError;
use super::{WebAuth, request_allowed};
use crate::html::escape;

/// Nothing but the page itself: no script, no style, forms to this service only, not framed.
const CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The largest sign-in form read (a token is a few hundred bytes).
const FORM_LIMIT: usize = 4096;

/// How to get a link, as the pages say it.
const ASK_FOR_A_LINK: &str = "<code>notifications-backend token --user \
                              user:default/&lt;you&gt; --link</code>";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/inbox", web::get().to(home))
        .route("/settings", web::get().to(home))
        .route("/signin", web::get().to(link_page))
        .service(
            web::resource("/signin")
                .app_data(web::PayloadConfig::new(FORM_LIMIT))
                .route(web::post().to(sign_in)),
        )
        .route("/signout", web::post().to(sign_out));
}

/// A page. `Referrer-Policy: same-origin`: the link's token goes nowhere else as a referrer,
/// while the page's own forms still carry their `Origin` (under `no-referrer` browsers send
/// `Origin: null`, which is refused).
fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    page_with_head(status, title, "", body)
}

/// A page with more in its `<head>` (trusted markup, not text).
fn page_with_head(status: StatusCode, title: &str, head: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"color-scheme\" content=\"light dark\">{head}\
             <title>{0}</title></head>\n<body>\n<main>\n<h1>{0}</h1>\n{body}\n\
             </main>\n</body></html>\n",
            escape(title)
        ))
}

/// The user signed in by cookie or proxy.
fn signed_in(req: &HttpRequest, web: &WebAuth) -> Option<String> {
    user_of(req, web).map(|user| user.to_string())
}

/// The inbox (its script shows the list or the settings, by the path), or how to sign in.
async fn home(req: HttpRequest, web: web::Data<WebAuth>) -> HttpResponse {
    if let Some(user) = user_of(&req, &web) {
        return shell(&user, &web);
    }
    // Opened from another site (a link in webmail or chat), the browser kept the
    // `SameSite=Strict` session cookie to itself: the page loads itself once more, a navigation
    // of this site, which carries it. Signed out, that second load says so (it is no longer
    // from another site, so there is no third).
    let from_elsewhere = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|site| site == "cross-site" || site == "same-site");
    page_with_head(
        StatusCode::OK,
        "Notifications",
        if from_elsewhere {
            "<meta http-equiv=\"refresh\" content=\"0\">"
        } else {
            ""
        },
        &format!(
            "<p>You are not signed in.</p>\n<p>Ask an operator for a sign-in link: \
             {ASK_FOR_A_LINK} prints one, valid once. Where the service sits behind an \
             authenticating proxy, open it through the proxy.</p>"
        ),
    )
}

fn refused(why: &str) -> HttpResponse {
    page(
        StatusCode::BAD_REQUEST,
        "Sign-in link not valid",
        &format!("<p>{why}. Ask for a new one: {ASK_FOR_A_LINK}.</p>"),
    )
}

fn link_refused(error: &LinkError) -> HttpResponse {
    refused(match error {
        LinkError::Expired => "This sign-in link has expired",
        LinkError::Invalid => "This is not a valid sign-in link",
    })
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(default)]
    token: String,
}

/// The link's page: whom it signs in, and a button that does (a POST, which link scanners do
/// not make).
async fn link_page(
    req: HttpRequest,
    web: web::Data<WebAuth>,
    query: web::Query<LinkQuery>,
) -> HttpResponse {
    let link = match web.sessions.read_link(&query.token) {
        Ok(link) => link,
        Err(e) => return link_refused(&e),
    };
    let switch = match signed_in(&req, &web) {
        Some(now) if now != link.user.as_str() => format!(
            "<p>You are signed in as <strong>{}</strong> now: this link signs you out of that.</p>\n",
            escape(&now)
        ),
        _ => String::new(),
    };
    page(
        StatusCode::OK,
        "Sign in",
        &format!(
            "{switch}<form method=\"post\" action=\"/signin\">\n<input type=\"hidden\" \
             name=\"token\" value=\"{}\">\n<p>This link signs you in as <strong>{}</strong>, \
             once.</p>\n<button type=\"submit\">Sign in</button>\n</form>",
            escape(&query.token),
            escape(link.user.as_str())
        ),
    )
}

/// Uses the link (once) and sets the session cookie. The form (at most [`FORM_LIMIT`] bytes)
/// is taken as it comes: a missing or foreign token is a refused link, and a request from
/// elsewhere is refused first.
async fn sign_in(req: HttpRequest, web: web::Data<WebAuth>, form: web::Bytes) -> HttpResponse {
    if !request_allowed(&req, &web) || req.headers().get(header::ORIGIN).is_none() {
        return cross_site();
    }
    let token = url::form_urlencoded::parse(&form)
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let link = match web.sessions.read_link(&token) {
        Ok(link) => link,
        Err(e) => return link_refused(&e),
    };
    match web
        .store
        .use_sign_in_link(link.id.clone(), &link.user, link.expires)
        .await
    {
        Ok(true) => {}
        Ok(false) => return refused("This sign-in link was used already"),
        Err(e) => {
            tracing::error!(error = %e, "cannot record a sign-in link's use");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<p>The service cannot sign you in just now. Try again in a moment.</p>",
            );
        }
    }
    let value = match web.sessions.mint_session(&link.user) {
        Ok(value) => value,
        Err(e) => {
            tracing::error!(error = %e, "cannot sign a session");
            return page(StatusCode::INTERNAL_SERVER_ERROR, "Try again", "");
        }
    };
    tracing::info!(user = %link.user, "signed in with a link");
    let max_age = i64::try_from(web.sessions.session_ttl.as_secs()).unwrap_or(i64::MAX);
    HttpResponse::SeeOther()
        .cookie(session_cookie(
            &web,
            value,
            time::Duration::seconds(max_age),
        ))
        .insert_header((header::LOCATION, "/"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn session_cookie(web: &WebAuth, value: String, max_age: time::Duration) -> Cookie<'static> {
    Cookie::build(web.cookie_name(), value)
        .path("/")
        .http_only(true)
        .secure(web.secure)
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .finish()
}

/// Forgets the session cookie (in this browser: a copy taken elsewhere stays valid until it
/// expires).
async fn sign_out(req: HttpRequest, web: web::Data<WebAuth>) -> HttpResponse {
    if !request_allowed(&req, &web) || req.headers().get(header::ORIGIN).is_none() {
        return cross_site();
    }
    HttpResponse::SeeOther()
        .cookie(session_cookie(&web, String::new(), time::Duration::ZERO))
        .insert_header((header::LOCATION, "/"))
        .finish()
}

fn cross_site() -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "Refused",
        "<p>This request did not come from this service's own pages.</p>",
    )
}
