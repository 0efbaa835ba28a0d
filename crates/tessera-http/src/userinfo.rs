//! `GET /v1/userinfo` (OpenID Connect Core §5.3): the user behind a bearer
//! access token, as far as its scopes allow.

use axum::Json;
use axum::extract::State;
use http::HeaderMap;
use serde_json::{Value, json};
use tessera_core::authorization::has_scope;

use crate::auth::bearer;
use crate::problem::ApiError;
use crate::state::AppState;

/// `GET /v1/userinfo` with `Authorization: Bearer`: `{sub}`, plus
/// `preferred_username` with scope `profile` (a password-grant token, which
/// has no scope, sees its own user's profile).
pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = bearer(&headers).ok_or_else(ApiError::unauthenticated)?;
    let tokens = &state.core().token_sessions;
    let auth = tokens.authenticate(token).await?;
    let claims = tokens
        .verify_access_token(token)
        .await
        .map_err(|_| ApiError::unauthenticated())?;
    let mut body = json!({ "sub": auth.user.id.to_string() });
    let profile = claims
        .scope
        .as_deref()
        .is_none_or(|s| has_scope(s, "profile"));
    if profile && let Some(fields) = body.as_object_mut() {
        fields.insert(
            "preferred_username".into(),
            json!(auth.user.username.display()),
        );
    }
    Ok(Json(body))
}
