//! Cookie sessions: sign in, look at the current session, sign out.

use crate::json::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::auth::{Carrier, Client, cookie_caller, cookie_session, csrf_checked};
use crate::input::{Input, form_bool};
use crate::openapi::responses as r;
use crate::problem::ProblemBody as Problem;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;
use crate::views::{SessionView, UserView};
use serde_json::Value;
use tessera_core::cookie_session::SignedIn;
use tessera_core::session::SessionKind;
use uuid::Uuid;

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
pub struct SessionBody<'a> {
    /// The signed-in user.
    user: UserView<'a>,
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
        (status = 401, description = "The username or password is wrong (`invalid-credentials`); which one, or whether the user exists, is not told. Or the password is right and the user has a second factor (`mfa-required`): the problem carries `mfa_token`, to send with a code to `POST /v1/session/mfa`",
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
    answer_signed_in(&state, &signed_in)
}

/// `POST /v1/session/mfa` body (JSON or form).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CompleteMfa {
    /// The `mfa_token` of the `mfa-required` answer.
    mfa_token: String,
    /// A code from the authenticator app (six digits), or a recovery code.
    /// Or, instead, a passkey: `ceremony_id` and `credential`.
    #[serde(default)]
    code: Option<String>,
    /// The passkey ceremony `POST /v1/session/mfa/passkey` began.
    #[serde(default)]
    ceremony_id: Option<Uuid>,
    /// The browser's answer to `navigator.credentials.get()` for it
    /// (`PublicKeyCredential` as JSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    credential: Option<Value>,
}

/// What proves the second factor: a code, or a passkey's answer.
pub(crate) enum SecondFactorProof {
    /// A TOTP or recovery code.
    Code(String),
    /// A passkey ceremony and the browser's answer to it.
    Passkey(Uuid, Value),
}

impl SecondFactorProof {
    /// `code`, or `ceremony_id` with `credential`: exactly one of the two.
    pub(crate) fn from_fields(
        code: Option<String>,
        ceremony_id: Option<Uuid>,
        credential: Option<Value>,
    ) -> Result<Self, ApiError> {
        match (code, ceremony_id, credential) {
            (Some(code), None, None) => Ok(Self::Code(code)),
            (None, Some(id), Some(credential)) => Ok(Self::Passkey(id, credential)),
            _ => Err(ApiError::bad_request(
                "send either `code`, or `ceremony_id` and `credential` (a passkey)",
            )),
        }
    }
}

/// `POST /v1/session/mfa`: the second step of a cookie sign-in whose
/// password was right: the `mfa_token` and a TOTP code (or a recovery
/// code), or a passkey's answer to the ceremony `POST
/// /v1/session/mfa/passkey` began. The token is bound to the address the password came from and
/// lives 5 minutes; a right code spends it. Wrong codes count against the
/// same limits as wrong passwords; once they are reached even a right code
/// is refused (429) until the wait is over.
#[utoipa::path(
    post,
    path = "/v1/session/mfa",
    tag = "sessions",
    request_body(content(
        (CompleteMfa = "application/json"),
        (CompleteMfa = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Signed in", body = SessionBody,
            headers(("Set-Cookie" = String, description = "The new session cookie"))),
        (status = 400, response = r::InvalidRequest),
        (status = 401, description = "The code is wrong or used, or the passkey's answer is refused (`invalid-code`; the token stays usable), or the token is unknown, expired, used or from another address (`invalid-mfa-token`: sign in again)",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, response = r::CsrfRefused),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn complete_mfa(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Input { value, .. }: Input<CompleteMfa>,
) -> Result<Response, ApiError> {
    state.http().origins.check(&headers)?;
    let proof = SecondFactorProof::from_fields(value.code, value.ceremony_id, value.credential)?;
    let planted: Vec<_> = state.http().cookie.session_secrets(&headers).collect();
    let core = state.core();
    let signed_in = match proof {
        SecondFactorProof::Code(code) => {
            core.cookie_sessions
                .complete_mfa(&value.mfa_token, &code, &planted, &client)
                .await?
        }
        SecondFactorProof::Passkey(ceremony_id, credential) => {
            let done = core
                .mfa_sign_in
                .complete_with_passkey(
                    &value.mfa_token,
                    SessionKind::Cookie,
                    ceremony_id,
                    credential,
                    &client,
                )
                .await?;
            core.cookie_sessions.finish(done, &planted, &client).await?
        }
    };
    answer_signed_in(&state, &signed_in)
}

/// The answer to a finished sign-in: the cookie, the user, the session and
/// its CSRF token.
pub(crate) fn answer_signed_in(
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
) -> Result<Response, ApiError> {
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
        .get(&caller.auth.session().id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(Json(SessionBody {
        user: UserView::from(caller.auth.user.as_ref()),
        session: SessionView::new(&session, Some(session.id.as_str())),
        csrf_token: state.core().cookie_sessions.csrf_token(secret),
    })
    .into_response())
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
