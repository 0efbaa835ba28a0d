//! The signed-in user's sessions, both kinds: list, revoke one, revoke many.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{Caller, Carrier, Client};
use crate::input::{ApiPath, ApiQuery};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::SessionView;

/// `GET /v1/me/sessions`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let current = caller.auth.session.id.as_str();
    let sessions = state.core().user_sessions.list(caller.auth.user.id).await?;
    Ok(Json(
        sessions
            .iter()
            .map(|s| SessionView::listed(s, Some(current)))
            .collect(),
    ))
}

/// `DELETE /v1/me/sessions/{id}`: 404 unless it is one of the caller's.
pub async fn revoke_one(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    state
        .core()
        .user_sessions
        .revoke(caller.auth.user.id, &id, &client)
        .await?;
    Ok(signed_out_if(
        id == caller.auth.session.id.as_str(),
        &caller,
        &state,
    ))
}

/// Which sessions `DELETE /v1/me/sessions` ends.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Scope {
    Others,
    All,
}

/// `DELETE /v1/me/sessions` query.
#[derive(Deserialize)]
pub struct ScopeQuery {
    scope: Option<Scope>,
}

/// `DELETE /v1/me/sessions?scope=others|all`.
pub async fn revoke_many(
    State(state): State<AppState>,
    Client(client): Client,
    caller: Caller,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<Response, ApiError> {
    let scope = query
        .scope
        .ok_or_else(|| ApiError::bad_request("`scope` must be `others` or `all`"))?;
    let keep = match scope {
        Scope::Others => Some(&caller.auth.session.id),
        Scope::All => None,
    };
    state
        .core()
        .user_sessions
        .revoke_all(caller.auth.user.id, keep, &client, "user")
        .await?;
    Ok(signed_out_if(matches!(scope, Scope::All), &caller, &state))
}

/// 204, clearing the cookie when the caller's own cookie session just ended.
fn signed_out_if(ended_own: bool, caller: &Caller, state: &AppState) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if ended_own
        && matches!(caller.carrier, Carrier::Cookie(_))
        && let Some(clear) = state.http().cookie.clear()
    {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    response
}
