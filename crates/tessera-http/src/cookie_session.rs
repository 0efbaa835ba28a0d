//! Cookie sessions: sign in, look at the current session, sign out.

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::cookie_session::SignedIn;
use zeroize::Zeroizing;

use crate::auth::{Carrier, Client, cookie_caller, cookie_session, csrf_checked};
use crate::input::{Input, form_bool};
use crate::openapi::responses as r;
use crate::problem::ProblemBody as Problem;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;
use crate::views::{SessionView, UserView};

/// `POST /v1/session` body (JSON or form).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    /// The username.
    username: String,
    /// The password.
    password: String,
    /// Keep the session for `session.remember_me_timeout` (a form's
    /// checkbox `on` counts as true).
    #[serde(default, deserialize_with = "form_bool")]
    remember_me: bool,
}

/// What sign-in and `GET /v1/session` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    /// The signed-in user.
    user: UserView,
    /// The cookie's session.
    session: SessionView,
    /// The session's CSRF token: send it as `X-CSRF-Token` (or a
    /// `csrf_token` form field) with every request but GET, HEAD and OPTIONS.
    csrf_token: String,
}

/// `POST /v1/session`: checks the password and starts a new cookie session.
/// Sessions named by cookies already on the request are ended first, so a
/// planted cookie never becomes a signed-in one.
#[utoipa::path(
    post,
    path = "/v1/session",
    tag = "sessions",
    request_body(content(
        (SignIn = "application/json"),
        (SignIn = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Signed in", body = SessionBody,
            headers(("Set-Cookie" = String, description = "The new session cookie"))),
        (status = 400, response = r::InvalidRequest),
        (status = 401, description = "The username or password is wrong (`invalid-credentials`); which one, or whether the user exists, is not told",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, response = r::CsrfRefused),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn sign_in(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Input { value, .. }: Input<SignIn>,
) -> Result<Response, ApiError> {
    // Login CSRF: a foreign site must not sign the browser into its account.
    state.http().origins.check(&headers)?;
    let planted: Vec<_> = state.http().cookie.session_secrets(&headers).collect();
    let signed_in = state
        .core()
        .cookie_sessions
        .sign_in(
            &value.username,
            Zeroizing::new(value.password),
            value.remember_me,
            &planted,
            &client,
        )
        .await?;
    signed_in_response(&state, &signed_in)
}

/// The answer to a cookie sign-in (by password or passkey): the session,
/// its CSRF token, and the cookie.
pub(crate) fn signed_in_response(
    state: &AppState,
    signed_in: &SignedIn,
) -> Result<Response, ApiError> {
    let max_age = signed_in.session.absolute_expires_at - signed_in.session.created_at;
    let cookie = state
        .http()
        .cookie
        .set(&signed_in.secret, max_age)
        .ok_or_else(|| ApiError::bad_request("the cookie could not be built"))?;
    let body = SessionBody {
        user: UserView::from(&signed_in.user),
        session: SessionView::new(&signed_in.session, Some(signed_in.session.id.as_str())),
        csrf_token: state.core().cookie_sessions.csrf_token(&signed_in.secret),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// `GET /v1/session`: the cookie's session and its CSRF token (an
/// `Authorization` header beside the cookie does not change which).
#[utoipa::path(
    get,
    path = "/v1/session",
    tag = "sessions",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The cookie's session", body = SessionBody),
        (status = 401, response = r::Unauthenticated),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn current(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<SessionBody>, ApiError> {
    let (parts, _body) = request.into_parts();
    let caller = cookie_caller(&parts, &state).await?;
    let Carrier::Cookie(secret) = &caller.carrier else {
        return Err(ApiError::unauthenticated());
    };
    // The authenticated copy may come from the cache, without address and
    // user agent: show the stored one.
    let session = state
        .core()
        .user_sessions
        .get(&caller.auth.session.id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(Json(SessionBody {
        user: UserView::from(caller.auth.user.as_ref()),
        session: SessionView::new(&session, Some(session.id.as_str())),
        csrf_token: state.core().cookie_sessions.csrf_token(secret),
    }))
}

/// `DELETE /v1/session`: ends the cookie's session server-side and clears
/// the cookie. Without a live session there is nothing to protect, so it
/// just clears the cookie; with one, the CSRF checks apply. A request that
/// also carries a bearer token is refused: ending the cookie's session
/// would answer success while the token's session lives on.
#[utoipa::path(
    delete,
    path = "/v1/session",
    tag = "sessions",
    security(("session_cookie" = [], "csrf_token" = []), ()),
    responses(
        (status = 204, description = "Signed out (or there was no session); the cookie is cleared",
            headers(("Set-Cookie" = String, description = "Clears the session cookie"))),
        (status = 400, description = "An `Authorization` header beside the cookie (`ambiguous-credentials`): a token's session ends at `/v1/token/revoke`",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, response = r::CsrfRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn sign_out(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _body) = request.into_parts();
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return Err(ApiError::new(
            ProblemKind::AmbiguousCredentials,
            "DELETE /v1/session ends the session of the cookie: send it without an \
             Authorization header (a token's session ends at /v1/token/revoke)",
        ));
    }
    let client = match Client::from_request_parts(&mut parts, &state).await {
        Ok(Client(client)) => client,
        Err(never) => match never {},
    };
    if let Ok(found) = cookie_session(&parts, &state).await {
        let caller = csrf_checked(&parts, &state, found)?;
        state
            .core()
            .cookie_sessions
            .sign_out(&caller.auth, &client)
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(clear) = state.http().cookie.clear() {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    Ok(response)
}
