//! The signed-in user's sessions, both kinds: list, revoke one, revoke many.

use crate::json::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::{AccountCaller, Caller, Carrier, Client};
use crate::input::{ApiPath, ApiQuery};
use crate::openapi::responses as r;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::SessionView;

/// `GET /v1/me/sessions`: every session of the signed-in user, both kinds.
///
/// A session an OAuth client holds carries `client_id` and `client_name`.
#[utoipa::path(
    get,
    path = "/v1/me/sessions",
    operation_id = "list_my_sessions",
    tag = "me",
    security(("session_cookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The user's sessions", body = Vec<SessionView>),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    AccountCaller(caller): AccountCaller,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let current = caller.auth.session().id.as_str();
    let sessions = state.core().user_sessions.list(caller.auth.user.id).await?;
    Ok(Json(
        sessions
            .iter()
            .map(|s| SessionView::listed(s, Some(current)))
            .collect(),
    ))
}

/// `DELETE /v1/me/sessions/{id}`: 404 unless it is one of the caller's.
///
/// Ending the caller's own cookie session also clears the cookie.
#[utoipa::path(
    delete,
    path = "/v1/me/sessions/{id}",
    operation_id = "revoke_my_session",
    tag = "me",
    params(("id" = String, Path, description = "The session's public id")),
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Revoked",
            headers(("Set-Cookie" = String, description = "Clears the cookie when it was this cookie's session"))),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 404, response = r::NotFound),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn revoke_one(
    State(state): State<AppState>,
    Client(client): Client,
    AccountCaller(caller): AccountCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    state
        .core()
        .user_sessions
        .revoke(caller.auth.user.id, &id, &client)
        .await?;
    Ok(signed_out_if(
        id == caller.auth.session().id.as_str(),
        &caller,
        &state,
    ))
}

/// Which sessions `DELETE /v1/me/sessions` ends.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum Scope {
    /// Every session but the caller's: sign out other devices.
    Others,
    /// Every session, the caller's too: sign out everywhere.
    All,
}

/// `DELETE /v1/me/sessions` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScopeQuery {
    /// `others` or `all` (required).
    #[param(required = true, inline)]
    scope: Option<Scope>,
}

/// `DELETE /v1/me/sessions?scope=others|all`.
#[utoipa::path(
    delete,
    path = "/v1/me/sessions",
    operation_id = "revoke_my_sessions",
    tag = "me",
    params(ScopeQuery),
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Revoked",
            headers(("Set-Cookie" = String, description = "Clears the cookie (`scope=all` with a cookie session)"))),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn revoke_many(
    State(state): State<AppState>,
    Client(client): Client,
    AccountCaller(caller): AccountCaller,
    ApiQuery(query): ApiQuery<ScopeQuery>,
) -> Result<Response, ApiError> {
    let scope = query
        .scope
        .ok_or_else(|| ApiError::bad_request("`scope` must be `others` or `all`"))?;
    let keep = match scope {
        Scope::Others => Some(&caller.auth.session().id),
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
