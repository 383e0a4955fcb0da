//! The notification routes: list, get, update, status, topics (users) and create (services).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use notifications_common::{
    Notification, NotificationListResponse, NotificationSendOptions, NotificationStatus,
    ReadAllResponse, TopicsResponse, UpdateNotificationsRequest,
};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::extract::{CallingService, CurrentUser, JsonBody};
use super::responses::{Authenticated, IdempotencyKeyReused, NotFound};
use super::{AppState, ok, query};
use crate::error::Error;
use crate::service::{MAX_KEY_LENGTH, SendAnswer};

/// Makes a send idempotent (beyond upstream): see docs/api.md.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set on the answer to a repeated key: the recorded answer, nothing was sent now.
const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// The optional header of a create, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Describes the request; never built.
struct IdempotencyHeader {
    /// Send once per origin and key for 24 hours; a repeat gets the first answer.
    #[param(rename = "Idempotency-Key", value_type = Option<IdempotencyKey>, nullable = false)]
    idempotency_key: Option<String>,
}

/// The `Idempotency-Key` header's schema: visible ASCII, as the service checks it.
pub struct IdempotencyKey;

impl PartialSchema for IdempotencyKey {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[!-~]{{1,{MAX_KEY_LENGTH}}}$")))
            .into()
    }
}

impl ToSchema for IdempotencyKey {}

/// List the caller's notifications and every broadcast.
#[utoipa::path(
    get, path = "/notifications", tag = "notifications", operation_id = "listNotifications",
    params(query::PageParams, query::FilterParams),
    responses(
        (status = 200, description = "A page of them, newest first by default", body = NotificationListResponse),
        Authenticated,
    ),
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
    get, path = "/notifications/{id}", tag = "notifications", operation_id = "getNotification",
    params(("id" = uuid::Uuid, Path, description = "Any other text is not found")),
    responses(
        (status = 200, description = "The notification", body = Notification),
        (status = 404, response = NotFound),
        Authenticated,
    ),
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
    post, path = "/notifications/update", tag = "notifications", operation_id = "updateNotifications",
    request_body = UpdateNotificationsRequest,
    responses(
        (status = 200, description = "The caller's notifications among the ids, marked", body = Vec<Notification>),
        Authenticated,
    ),
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

/// Mark read every unread notification of the caller, own and broadcast, or only those that
/// match the filters given (beyond upstream). One `notification_read` signal names them.
#[utoipa::path(
    post, path = "/notifications/read-all", tag = "notifications", operation_id = "markAllRead",
    params(query::ReadAllParams),
    responses(
        (status = 200, description = "How many were marked", body = ReadAllResponse),
        Authenticated,
    ),
    security(("bearer" = []))
)]
pub async fn read_all(
    req: HttpRequest,
    user: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let filters = query::read_all_filters(req.query_string())?;
    ok(&ReadAllResponse {
        updated: state.service.mark_all_read(&user.user_ref, filters).await?,
    })
}

/// Read and unread counts.
#[utoipa::path(
    get, path = "/status", tag = "notifications", operation_id = "getStatus",
    responses(
        (status = 200, description = "The counts", body = NotificationStatus),
        Authenticated,
    ),
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
    get, path = "/topics", tag = "notifications", operation_id = "getTopics",
    params(query::FilterParams),
    responses(
        (status = 200, description = "The topics, sorted", body = TopicsResponse),
        Authenticated,
    ),
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
    post, path = "/notifications", tag = "notifications", operation_id = "createNotifications",
    request_body = NotificationSendOptions,
    params(IdempotencyHeader),
    responses(
        (status = 200, description = "The notifications created or updated", body = Vec<Notification>,
         headers(("Idempotent-Replayed" = String, description = "`true` on the recorded answer to a repeated key"))),
        (status = 422, response = IdempotencyKeyReused),
        Authenticated,
    ),
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
                .ok_or_else(|| Error::Internal {
                    message: format!("recorded status {}", answer.status),
                    source: None,
                })?;
            let mut response = HttpResponse::build(status);
            response.insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"));
            if replayed {
                response.insert_header((IDEMPOTENT_REPLAYED, "true"));
            }
            Ok(response.body(answer.body))
        }
    }
}
