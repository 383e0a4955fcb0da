//! Backstage's backend-wide health endpoints (no authentication).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, json};

pub async fn liveness() -> HttpResponse {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

/// Ready when the database answers.
pub async fn readiness(state: web::Data<AppState>) -> HttpResponse {
    match state.db.ping().await {
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
