//! The signed-in user's consents to OAuth clients: list them, withdraw one
//! (which also ends every session that client holds for the user).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::{Caller, Client};
use crate::input::ApiPath;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::{ConsentView, ConsentsView};

/// `GET /v1/me/consents`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
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
pub async fn revoke(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    ApiPath(client_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state
        .core()
        .authorization
        .revoke_consent(caller.auth.user.id, &client_id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
