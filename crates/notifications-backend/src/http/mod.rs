//! The HTTP surface: upstream's routes under `/api/notifications` (and their deprecated
//! aliases), health endpoints, and the error bodies.

mod cors;
mod error;
mod extract;
mod health;
pub mod janus;
pub mod metrics;
mod notifications;
mod openapi;
mod preferences;
pub(crate) mod query;
pub mod rate_limit;
mod request_log;
mod responses;
#[cfg(feature = "testing")]
pub use query::{list_options, read_all_filters, topics_options};
mod settings;
mod signals;
pub(crate) mod stream;

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpResponse, web};
use serde::Serialize;

pub use cors::layer as cors_layer;
use error::{RequestDetail, error_response, with_request_details};
pub use request_log::log_request;

use crate::auth::Authenticator;
use crate::config::{JanusConfig, SignalsConfig};
use crate::db::Db;
use crate::error::Error;
use crate::inbox::{self, WebAuth};
use crate::service::NotificationsService;

/// Where the notifications plugin is mounted, as in Backstage.
pub use notifications_common::NOTIFICATIONS_MOUNT as PLUGIN_MOUNT;

/// What every handler can reach.
pub struct AppState {
    pub service: NotificationsService,
    pub auth: Arc<Authenticator>,
    pub db: Db,
    pub signals: SignalsConfig,
    /// The OpenAPI document, rendered once.
    pub openapi: web::Bytes,
    /// What `GET /metrics` reads at scrape time.
    pub metrics: metrics::Scrape,
}

impl AppState {
    pub fn new(
        service: NotificationsService,
        auth: Arc<Authenticator>,
        db: Db,
        signals: SignalsConfig,
        janus: &JanusConfig,
        metrics: metrics::Scrape,
    ) -> Self {
        let openapi = openapi::document(janus, &service.settings_channels());
        Self {
            service,
            auth,
            db,
            signals,
            openapi: web::Bytes::from(openapi),
            metrics,
        }
    }
}

/// A JSON answer with upstream's content type.
fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"))
            .body(body),
        Err(e) => {
            tracing::error!("could not serialise a response: {e}");
            HttpResponse::InternalServerError().finish()
        }
    }
}

fn ok<T: Serialize + ?Sized>(value: &T) -> Result<HttpResponse, Error> {
    Ok(json(StatusCode::OK, value))
}

/// Registers every route on an actix `App`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use notifications::{create, get_one, list, read_all, status, topics, update};
    let not_found =
        || web::to(|| async { Err::<HttpResponse, _>(Error::NotFound("Not found".into())) });
    // One resource per path, so that a known path with another method is a plain 404 (as
    // upstream) rather than a 405. Static paths come before `/{id}`.
    let resource = |path: &str| web::resource(path).default_service(not_found());
    cfg.route(
        "/.backstage/health/v1/liveness",
        web::get().to(health::liveness),
    )
    .route(
        "/.backstage/health/v1/readiness",
        web::get().to(health::readiness),
    )
    // The signals plugin has no HTTP authentication: the WebSocket carries its own token.
    .service(
        web::scope(signals::SIGNALS_MOUNT)
            .service(resource("").get(signals::connect))
            .service(resource("/health").get(signals::health))
            .default_service(not_found()),
    )
    .service(
        web::scope(PLUGIN_MOUNT)
            .wrap(from_fn(plugin_boundary))
            .service(resource("/notifications").get(list).post(create))
            .service(resource("/notifications/update").post(update))
            .service(resource("/notifications/read-all").post(read_all))
            .service(resource("/notifications/{id}").get(get_one))
            .service(resource("/status").get(status))
            .service(resource("/topics").get(topics))
            .service(resource("/stream").get(stream::stream))
            .service(
                resource("/settings")
                    .get(settings::get)
                    .post(settings::save),
            )
            .service(
                resource("/preferences")
                    .get(preferences::get)
                    .put(preferences::save),
            )
            .service(resource(OPENAPI_PATH).get(openapi::serve))
            // Deprecated aliases upstream still serves; its node client posts to the bare
            // mount path.
            .service(resource("").get(list).post(create))
            .service(resource("/").get(list).post(create))
            .service(resource("/update").post(update))
            .service(resource("/{id}").get(get_one))
            .default_service(not_found()),
    );
}

/// Where the OpenAPI document is served, under the plugin's mount path.
const OPENAPI_PATH: &str = "/openapi.json";

/// Every plugin route but the OpenAPI document: authenticate first (401 before anything else, unknown paths included),
/// then give error answers their request details.
async fn plugin_boundary(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let e = Error::Internal {
            message: "application state missing".into(),
            source: None,
        };
        let response = error_response(&e, RequestDetail::of(req.request()));
        return Ok(req.into_response(response));
    };
    if req.path().strip_prefix(PLUGIN_MOUNT) == Some(OPENAPI_PATH) {
        // The API description is public (it holds no data); a client generator needs it first.
        let res = next.call(req).await?;
        return Ok(with_request_details(res.map_into_boxed_body()));
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // The rate limiter may have authenticated the request already.
    let known = req.extensions_mut().remove::<rate_limit::Authenticated>();
    // Without a bearer token: the web inbox's session cookie, or a trusted proxy's header.
    let web_auth = req.app_data::<web::Data<WebAuth>>().cloned();
    let ambient = match (&known, &web_auth) {
        (None, Some(web)) if !inbox::has_bearer(req.request()) => {
            inbox::ambient_principal(req.request(), web)
                .map(|principal| (principal, inbox::request_allowed(req.request(), web)))
        }
        _ => None,
    };
    let by_browser = ambient.is_some();
    let outcome = match (known, ambient) {
        (Some(rate_limit::Authenticated(principal)), _) => Ok(principal),
        (None, Some((principal, true))) => Ok(principal),
        (None, Some((_, false))) => {
            let refusal = Error::NotAllowed(
                "A request signed in by cookie or proxy must come from this service's own pages \
                 (Origin, Sec-Fetch-Site)"
                    .into(),
            );
            let response = error_response(&refusal, RequestDetail::of(req.request()));
            return Ok(req.into_response(response));
        }
        (None, None) => state.auth.authenticate_header(header).await,
    };
    match outcome {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
        }
        Err(e) => {
            let response = error_response(
                &Error::Unauthenticated(e.to_string()),
                RequestDetail::of(req.request()),
            );
            return Ok(req.into_response(response));
        }
    }
    let mut res = next.call(req).await?;
    if by_browser {
        // An answer for whoever holds the cookie or passes the proxy: no shared cache keeps it.
        let headers = res.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("private, no-store"),
        );
        headers.append(header::VARY, header::HeaderValue::from_static("Cookie"));
    }
    Ok(with_request_details(res.map_into_boxed_body()))
}
