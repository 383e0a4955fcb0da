//! The notification routes: list, get, update, status, topics (users) and create (services).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use notifications_common::{
    Notification, NotificationListResponse, NotificationSendOptions, NotificationStatus,
    TopicsResponse, UpdateNotificationsRequest,
};

use super::error::ErrorBody;
use super::extract::{CallingService, CurrentUser, JsonBody};
use super::{AppState, ok, query};
use crate::error::Error;
use crate::service::SendAnswer;

/// Makes a send idempotent (beyond upstream): see docs/api.md.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set on the answer to a repeated key: the recorded answer, nothing was sent now.
const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// List the caller's notifications and every broadcast.
#[utoipa::path(
    get, path = "/notifications", tag = "notifications",
    params(
        ("offset" = Option<u64>, Query, description = "Rows to skip"),
        ("limit" = Option<u64>, Query, description = "Rows to return; all when absent"),
        ("orderField" = Option<Vec<String>>, Query, description = "`field[,asc|desc]`, repeatable; default `created,desc`"),
        ("topic" = Option<String>, Query, description = "Exact topic"),
        ("search" = Option<String>, Query, description = "Case-insensitive text in title or description"),
        ("read" = Option<bool>, Query), ("saved" = Option<bool>, Query),
        ("createdAfter" = Option<String>, Query, description = "ISO 8601 date-time, inclusive"),
        ("minimumSeverity" = Option<notifications_common::NotificationSeverity>, Query),
    ),
    responses((status = 200, body = NotificationListResponse), (status = 400, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let options = query::list_options(req.query_string())?;
    let (notifications, total_count) = state.service.list(&user.user_ref, &options).await?;
    ok(&NotificationListResponse {
        total_count,
        notifications,
    })
}

/// One of the caller's notifications, or a broadcast.
#[utoipa::path(
    get, path = "/notifications/{id}", tag = "notifications",
    params(("id" = String, Path)),
    responses((status = 200, body = Notification), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_one(
    req: HttpRequest,
    user: CurrentUser,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    query::none(req.query_string())?;
    ok(&state.service.get(&user.user_ref, &id).await?)
}

/// Mark notifications read/unread and saved/unsaved.
#[utoipa::path(
    post, path = "/notifications/update", tag = "notifications",
    request_body = UpdateNotificationsRequest,
    responses((status = 200, body = Vec<Notification>), (status = 400, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn update(
    req: HttpRequest,
    user: CurrentUser,
    body: JsonBody<UpdateNotificationsRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    query::none(req.query_string())?;
    ok(&state.service.update(&user.user_ref, body.0).await?)
}

/// Read and unread counts.
#[utoipa::path(
    get, path = "/status", tag = "notifications",
    responses((status = 200, body = NotificationStatus)),
    security(("bearer" = []))
)]
pub async fn status(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    query::none(req.query_string())?;
    ok(&state.service.status(&user.user_ref).await?)
}

/// The distinct topics of the caller's notifications matching the filters.
#[utoipa::path(
    get, path = "/topics", tag = "notifications",
    params(
        ("search" = Option<String>, Query), ("read" = Option<bool>, Query), ("saved" = Option<bool>, Query),
        ("createdAfter" = Option<String>, Query),
        ("minimumSeverity" = Option<notifications_common::NotificationSeverity>, Query),
    ),
    responses((status = 200, body = TopicsResponse), (status = 400, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn topics(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let options = query::topics_options(req.query_string())?;
    ok(&TopicsResponse {
        topics: state.service.topics(&user.user_ref, &options).await?,
    })
}

/// Send a notification to users (entity refs) or to everyone (broadcast). Service callers only.
#[utoipa::path(
    post, path = "/notifications", tag = "notifications",
    request_body = NotificationSendOptions,
    responses(
        (status = 200, description = "The notifications created or updated", body = Vec<Notification>),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, description = "The Idempotency-Key was used with another request", body = ErrorBody),
    ),
    params(("Idempotency-Key" = Option<String>, Header, description = "Send once per origin and key for 24 hours; a repeat gets the first answer")),
    security(("bearer" = []))
)]
pub async fn create(
    req: HttpRequest,
    service: CallingService,
    body: JsonBody<NotificationSendOptions>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    query::none(req.query_string())?;
    let key = match req.headers().get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| Error::invalid("Invalid Idempotency-Key: visible ASCII only"))?,
        ),
    };
    match state.service.send(&service.subject, body.0, key).await? {
        SendAnswer::Sent(outcomes) => ok(&outcomes),
        SendAnswer::Recorded { answer, replayed } => {
            let status = u16::try_from(answer.status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or_else(|| Error::Internal(format!("recorded status {}", answer.status)))?;
            let mut response = HttpResponse::build(status);
            response.insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"));
            if replayed {
                response.insert_header((IDEMPOTENT_REPLAYED, "true"));
            }
            Ok(response.body(answer.body))
        }
    }
}
