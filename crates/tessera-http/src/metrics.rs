//! `GET /metrics`: this server's series in the Prometheus text format, for
//! `Authorization: Bearer <metrics_token>` or the admin token; 401 for
//! anything else. Answered whatever the request's `Host` (Prometheus scrapes
//! each node by address).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use secrecy::ExposeSecret as _;
use tessera_core::secret::constant_time_str_eq;

use crate::auth::bearer;
use crate::openapi::responses as r;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// The media type of the text exposition format, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: every series, prefixed `tessera_`, in the Prometheus
/// text format.
///
/// Answered whatever the request's `Host`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(("metrics_token" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The series (text exposition format 0.0.4)",
            body = String, content_type = "text/plain"),
        (status = 401, response = r::Unauthenticated),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let http = state.http();
    // Each configured token compared in constant time, both always.
    let allowed = bearer(&headers).is_some_and(|given| {
        [&http.metrics_token, &http.admin_token]
            .into_iter()
            .flatten()
            .fold(false, |ok, token| {
                constant_time_str_eq(given, token.expose_secret()) | ok
            })
    });
    if !allowed {
        return ApiError::new(
            ProblemKind::Unauthenticated,
            "send the metrics token (or the admin token) as a bearer token",
        )
        .into_response();
    }
    let mut response = state.core().scrape.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}
