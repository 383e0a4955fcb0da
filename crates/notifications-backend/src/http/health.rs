//! Backstage's backend-wide health endpoints (no authentication).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, json};
use crate::db::DbError;

pub async fn liveness() -> HttpResponse {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

/// A database that does not answer within this is not ready: orchestrators should hear so within
/// a second, not after a network timeout.
const READINESS_TIMEOUT: Duration = Duration::from_millis(900);

/// Ready when the database answers, within [`READINESS_TIMEOUT`].
pub async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    let answered = tokio::time::timeout(READINESS_TIMEOUT, state.db.ping()).await;
    match answered.unwrap_or_else(|_| Err(DbError::Task("no answer in time".into()))) {
        Ok(()) => json(StatusCode::OK, &json!({"status": "ok"})),
        Err(e) => {
            tracing::warn!("readiness check failed: {e}");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "error", "message": "The database is not reachable"}),
            )
        }
    }
}
