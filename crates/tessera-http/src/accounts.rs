//! Accounts: registration, the signed-in user, password change.

use crate::json::Json;
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
use crate::openapi::responses as r;
use crate::problem::ProblemBody as Problem;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;
use crate::views::UserView;

/// `POST /v1/users` body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Registration {
    /// 1–64 characters; compared case-insensitively after NFKC normalisation.
    username: String,
    /// 8–1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

/// A new account.
#[derive(Serialize, utoipa::ToSchema)]
struct Registered {
    /// User id.
    id: Uuid,
    /// The username as written.
    username: String,
    /// Creation time.
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    created_at: OffsetDateTime,
}

/// `POST /v1/users`: self-service registration.
///
/// Rate-limited per client address.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "accounts",
    request_body(content(
        (Registration = "application/json"),
        (Registration = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 201, description = "The account is created", body = Registered),
        (status = 400, description = "A username or password the rules refuse (`invalid-username`, `weak-password`, with the reason), or an unreadable body (`invalid-request`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, response = r::CsrfRefused),
        (status = 409, description = "The username is taken (`username-taken`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
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
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "accounts",
    security(("session_cookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in user", body = UserView),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn me(AccountCaller(caller): AccountCaller) -> Response {
    // Written once per cached user, then the same bytes on every call.
    let user = caller.auth.user.as_ref();
    let rendered = user
        .rendered
        .get_or_make(|| UserView::from(user).to_json().ok().map(bytes::Bytes::from));
    match rendered {
        Some(body) => crate::json::written(body),
        None => Json(UserView::from(user)).into_response(),
    }
}

/// `POST /v1/me/password` body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    /// The password now.
    current_password: String,
    /// The password from now on (8–1024 characters).
    #[schema(min_length = 8, max_length = 1024)]
    new_password: String,
}

/// `POST /v1/me/password`: checks the current password, sets the new one,
/// revokes every other session and rotates the current one.
///
/// A cookie session gets its new cookie in `Set-Cookie`.
#[utoipa::path(
    post,
    path = "/v1/me/password",
    tag = "accounts",
    request_body(content(
        (PasswordChange = "application/json"),
        (PasswordChange = "application/x-www-form-urlencoded"),
    )),
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Changed; every other session is revoked",
            headers(("Set-Cookie" = String, description = "The rotated session cookie (cookie sessions)"))),
        (status = 400, description = "A new password the rules refuse (`weak-password`), or an unreadable body (`invalid-request`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, description = "The current password is wrong (`wrong-password`), the origin or CSRF checks failed, or an application's token (`insufficient-scope`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
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
        let max_age = caller.auth.session().absolute_expires_at - state.core().context.now();
        if let Some(cookie) = state.http().cookie.set(&secret, max_age) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
    }
    Ok(response)
}
