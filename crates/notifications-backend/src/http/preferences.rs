//! The caller's delivery preferences (beyond upstream): digests, time zone, quiet hours.

use actix_web::{HttpRequest, HttpResponse, web};
use notifications_common::NotificationPreferences;

use super::extract::{CurrentUser, JsonBody};
use super::responses::Authenticated;
use super::{AppState, ok, query};
use crate::error::Error;

/// The caller's delivery preferences; the defaults when they saved none.
#[utoipa::path(
    get, path = "/preferences", tag = "preferences", operation_id = "getPreferences",
    responses(
        (status = 200, description = "The preferences", body = NotificationPreferences),
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
    ok(&state.service.preferences(&user.user_ref).await?)
}

/// Replace the caller's delivery preferences. A problem is a 400 naming the field.
#[utoipa::path(
    put, path = "/preferences", tag = "preferences", operation_id = "savePreferences",
    request_body = NotificationPreferences,
    responses(
        (status = 200, description = "The preferences as stored", body = NotificationPreferences),
        Authenticated,
    ),
    security(("bearer" = []))
)]
pub async fn save(
    req: HttpRequest,
    user: CurrentUser,
    body: JsonBody<NotificationPreferences>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    query::none(req.query_string())?;
    ok(&state
        .service
        .save_preferences(&user.user_ref, body.0)
        .await?)
}
