//! Accounts: registration, the signed-in user, password change.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::CoreError;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::auth::{AccountCaller, Carrier, Client};
use crate::input::Input;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;
use crate::views::UserView;

/// `POST /v1/users` body.
#[derive(Deserialize)]
pub struct Registration {
    username: String,
    password: String,
}

#[derive(Serialize)]
struct Registered {
    id: Uuid,
    username: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// `POST /v1/users`: self-service registration.
pub async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Input { value, .. }: Input<Registration>,
) -> Result<Response, ApiError> {
    state.http().origins.check(&headers)?;
    let user = state
        .core()
        .accounts
        .register(&value.username, Zeroizing::new(value.password), &client)
        .await?;
    let body = Registered {
        id: user.id,
        username: user.username.display().to_owned(),
        created_at: user.created_at,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /v1/me`: the signed-in user, by cookie or bearer token.
pub async fn me(AccountCaller(caller): AccountCaller) -> Json<UserView> {
    Json(UserView::from(caller.auth.user.as_ref()))
}

/// `POST /v1/me/password` body.
#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /v1/me/password`: checks the current password, sets the new one,
/// revokes every other session and rotates the current one.
pub async fn change_password(
    State(state): State<AppState>,
    Client(client): Client,
    AccountCaller(caller): AccountCaller,
    Input { value, .. }: Input<PasswordChange>,
) -> Result<Response, ApiError> {
    let rotated = state
        .core()
        .accounts
        .change_password(
            &caller.auth,
            Zeroizing::new(value.current_password),
            Zeroizing::new(value.new_password),
            &client,
        )
        .await
        .map_err(|e| match e {
            // The caller is signed in; a 401 would read as "signed out".
            CoreError::InvalidCredentials => {
                ApiError::new(ProblemKind::WrongPassword, "the current password is wrong")
            }
            other => other.into(),
        })?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let (Some(secret), Carrier::Cookie(_)) = (rotated, &caller.carrier) {
        let max_age = caller.auth.session.absolute_expires_at - state.core().context.now();
        if let Some(cookie) = state.http().cookie.set(&secret, max_age) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
    }
    Ok(response)
}
