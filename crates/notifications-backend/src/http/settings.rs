//! The caller's notification settings.

use actix_web::{HttpRequest, HttpResponse, web};
use notifications_common::NotificationSettings;

use super::extract::{CurrentUser, JsonBody};
use super::responses::{Authenticated, Conflict};
use super::{AppState, ok, query};
use crate::error::Error;

/// Effective settings: stored switches merged with the configured defaults, for every origin
/// and topic the caller has received.
#[utoipa::path(
    get, path = "/settings", tag = "settings", operation_id = "getSettings",
    responses(
        (status = 200, description = "The effective settings", body = NotificationSettings),
        Authenticated,
    ),
    security(("bearer" = []))
)]
pub async fn get(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    query::none(req.query_string())?;
    ok(&state.service.settings(&user.user_ref).await?)
}

/// Replace the caller's settings.
#[utoipa::path(
    post, path = "/settings", tag = "settings", operation_id = "saveSettings",
    request_body = NotificationSettings,
    responses(
        (status = 200, description = "The effective settings after the change", body = NotificationSettings),
        (status = 409, response = Conflict),
        Authenticated,
    ),
    security(("bearer" = []))
)]
pub async fn save(
    req: HttpRequest,
    user: CurrentUser,
    body: JsonBody<NotificationSettings>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    query::none(req.query_string())?;
    ok(&state.service.save_settings(&user.user_ref, &body.0).await?)
}
