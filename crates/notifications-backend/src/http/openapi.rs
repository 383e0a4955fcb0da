//! The OpenAPI document, generated from the handlers' annotations.

use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{AppState, notifications, query, settings};
use crate::error::Error;

#[derive(OpenApi)]
#[openapi(
    info(title = "notifications", description = "Backstage-compatible notifications API"),
    paths(
        notifications::list, notifications::get_one, notifications::update, notifications::status,
        notifications::topics, notifications::create, settings::get, settings::save,
    ),
    modifiers(&BearerAuth),
)]
struct NotificationsApi;

#[derive(OpenApi)]
#[openapi(nest((path = "/api/notifications", api = NotificationsApi)))]
struct MountedApi;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The document as JSON, paths prefixed with the mount path.
pub fn document() -> String {
    MountedApi::openapi().to_json().unwrap_or_else(|e| {
        tracing::error!("could not render the OpenAPI document: {e}");
        "{}".to_owned()
    })
}

/// Public, like any published API description: a client needs it before it has a token.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200)), security(()))]
pub async fn serve(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    query::none(req.query_string())?;
    Ok(HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(state.openapi.clone()))
}
