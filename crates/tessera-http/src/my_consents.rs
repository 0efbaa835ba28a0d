//! The signed-in user's consents to OAuth clients: list them, withdraw one
//! (which also ends every session that client holds for the user).

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::{AccountCaller, Client};
use crate::input::ApiPath;
use crate::openapi::responses as r;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::{ConsentView, ConsentsView};

/// `GET /v1/me/consents`: the OAuth clients the user allowed, newest first.
#[utoipa::path(
    get,
    path = "/v1/me/consents",
    operation_id = "list_my_consents",
    tag = "me",
    security(("session_cookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The user's consents", body = ConsentsView),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    AccountCaller(caller): AccountCaller,
) -> Result<Json<ConsentsView>, ApiError> {
    let consents = state
        .core()
        .authorization
        .consents(caller.auth.user.id)
        .await?;
    Ok(Json(ConsentsView {
        consents: consents.iter().map(ConsentView::from).collect(),
    }))
}

/// `DELETE /v1/me/consents/{client_id}`: 204, or 404 unless the caller
/// consented to that client (a malformed id included).
///
/// Every session the client holds for the user ends, and its next
/// authorization asks again.
#[utoipa::path(
    delete,
    path = "/v1/me/consents/{client_id}",
    operation_id = "revoke_my_consent",
    tag = "me",
    params(("client_id" = String, Path, description = "The OAuth client's id")),
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Withdrawn; the client's sessions of this user are revoked"),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 404, response = r::NotFound),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    Client(client): Client,
    AccountCaller(caller): AccountCaller,
    ApiPath(client_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .core()
        .authorization
        .revoke_consent(caller.auth.user.id, &client_id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
