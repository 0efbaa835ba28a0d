//! `GET /v1/userinfo` (OpenID Connect Core §5.3): the user behind a bearer
//! access token, as far as its scopes allow.

use crate::json::Json;
use axum::extract::State;
use http::HeaderMap;
use serde::Serialize;
use tessera_core::authorization::has_scope;

use crate::auth::bearer;
use crate::openapi::responses as r;
use crate::problem::ApiError;
use crate::state::AppState;

/// The user behind an access token (OpenID Connect Core §5.3.2).
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    /// The user's id.
    sub: String,
    /// The username, with scope `profile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<String>,
}

/// `GET /v1/userinfo` with `Authorization: Bearer`: `{sub}`, plus
/// `preferred_username` with scope `profile` (a password-grant token, which
/// has no scope, sees its own user's profile).
#[utoipa::path(
    get,
    path = "/v1/userinfo",
    tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user, as far as the token's scopes allow", body = UserInfo),
        (status = 401, response = r::Unauthenticated),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<UserInfo>, ApiError> {
    let token = bearer(&headers).ok_or_else(ApiError::unauthenticated)?;
    let tokens = &state.core().token_sessions;
    let auth = tokens.authenticate(token).await?;
    let claims = tokens
        .verify_access_token(token)
        .await
        .map_err(|_| ApiError::unauthenticated())?;
    let profile = claims
        .scope
        .as_deref()
        .is_none_or(|s| has_scope(s, "profile"));
    Ok(Json(UserInfo {
        sub: auth.user.id.to_string(),
        preferred_username: profile.then(|| auth.user.username.display().to_owned()),
    }))
}
