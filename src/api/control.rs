//! Roster's own endpoints, outside `/client/v4` (`../shared/DESIGN.md`, "Control plane"):
//! what an operator or a test suite asks of the server itself, never of Cloudflare's API.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_roster/health", get(health))
        .route("/metrics", get(super::metrics::metrics))
}

/// Whether the server can reach its database; no credentials, so a load balancer or a
/// test harness can ask. Answers in the v4 envelope, 503 when the database does not answer.
async fn health(State(app): State<AppState>) -> Response {
    match app.store.ping().await {
        Ok(()) => axum::Json(json!({
            "success": true,
            "errors": [],
            "messages": [],
            "result": {"status": "ok", "database": "reachable"},
        }))
        .into_response(),
        // The cause, as the API's answers give it while the database is away.
        Err(e) => ApiError::Unavailable(
            e.unavailable().unwrap_or("the database did not answer"),
            e.to_string(),
        )
        .into_response(),
    }
}
