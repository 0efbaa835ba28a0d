//! Liveness and readiness probes.

use crate::json::Json;
use axum::extract::State;
use serde::Serialize;

use crate::openapi::responses as r;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// `GET /healthz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /readyz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// Always `ready`.
    #[schema(example = "ready")]
    status: &'static str,
    /// Optional parts lost for now (`redis`): the node still serves every request.
    degraded: Vec<&'static str>,
}

/// `GET /healthz`: the process is up and serving.
///
/// Answered whatever the request's `Host`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Up", body = Health),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /readyz`: the store answers and revocations are current; 503
/// otherwise, and while the node drains before a shutdown. Lost optional parts (Redis) are named under `degraded`: the
/// node still serves every request, so a load balancer should keep it.
///
/// Answered whatever the request's `Host`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Ready),
        (status = 503, description = "Not ready (`not-ready`): the store cannot be reached, revocations are not current, or the node is shutting down",
            body = crate::problem::ProblemBody, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait (store unreachable)"))),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    if state.http().draining.is_draining() {
        return Err(ApiError::new(
            ProblemKind::NotReady,
            "the node is shutting down: send new requests to another",
        ));
    }
    let degraded = state.core().health.ready().await.map_err(|_| {
        ApiError::new(ProblemKind::NotReady, "the data store cannot be reached").retry_after_secs(5)
    })?;
    Ok(Json(Ready {
        status: "ready",
        degraded,
    }))
}
