//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers and revocations are current; 503
/// otherwise, and while the node drains before a shutdown. Lost optional parts (Redis) are named under `degraded`: the
/// node still serves every request, so a load balancer should keep it.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.http().draining.is_draining() {
        return Err(ApiError::new(
            ProblemKind::NotReady,
            "the node is shutting down: send new requests to another",
        ));
    }
    let degraded = state.core().health.ready().await.map_err(|_| {
        ApiError::new(ProblemKind::NotReady, "the data store cannot be reached").retry_after_secs(5)
    })?;
    Ok(Json(json!({ "status": "ready", "degraded": degraded })))
}
