//! `/v1/me/mfa*`: the signed-in user's second factors — TOTP enrolment,
//! confirmation (answering the recovery codes once), disabling with the
//! password, new recovery codes, and what is enabled. The rules of every
//! `/v1/me*` endpoint apply ([`AccountCaller`]: cookie with CSRF token, a
//! password-grant or first-party token; 403 `insufficient-scope` for an
//! application's token).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::CoreError;
use zeroize::Zeroizing;

use crate::auth::{AccountCaller, Client};
use crate::input::Input;
use crate::openapi::responses as r;
use crate::problem::ProblemBody as Problem;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;
use crate::views::MfaView;

/// `POST /v1/me/mfa/totp` answer: what the authenticator app needs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpEnrolmentBody {
    /// The secret in base32 (RFC 4648, no padding), to type in.
    secret: String,
    /// The `otpauth://totp/...` URI (SHA1, 6 digits, 30 s), for a QR code.
    otpauth_uri: String,
}

/// `POST /v1/me/mfa/totp/confirm` body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TotpConfirm {
    /// The code the authenticator app shows now (six digits).
    code: String,
}

/// `POST /v1/me/mfa/totp/confirm` and `POST /v1/me/mfa/recovery-codes`
/// answer: shown once, stored only hashed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodesBody {
    /// Ten single-use codes (`xxxx-xxxx-xxxx-xxxx`), each accepted once in
    /// place of a TOTP code at sign-in. They replace any earlier set.
    recovery_codes: Vec<String>,
}

/// `DELETE /v1/me/mfa/totp` body.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TotpDisable {
    /// The account's password.
    password: String,
}

/// Answers that carry secrets are never cached.
fn no_store(body: impl Serialize) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /v1/me/mfa`: the second factors the signed-in user has enabled.
#[utoipa::path(
    get,
    path = "/v1/me/mfa",
    tag = "accounts",
    security(("session_cookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The enabled second factors", body = MfaView),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn status(
    State(state): State<AppState>,
    AccountCaller(caller): AccountCaller,
) -> Result<Json<MfaView>, ApiError> {
    let status = state.core().mfa_factors.status(caller.auth.user.id).await?;
    Ok(Json(status.into()))
}

/// `POST /v1/me/mfa/totp`: starts a TOTP enrolment. The answer's secret
/// (and URI) goes into an authenticator app; the factor stays pending,
/// and sign-in unchanged, until `POST /v1/me/mfa/totp/confirm`. Enrolling
/// again while pending replaces the pending secret.
#[utoipa::path(
    post,
    path = "/v1/me/mfa/totp",
    tag = "accounts",
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A pending TOTP factor", body = TotpEnrolmentBody,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, response = r::Unauthenticated),
        (status = 403, description = "The origin or CSRF checks failed, or an application's token (`insufficient-scope`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TOTP is already enabled (`conflict`): disable it first",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn enrol_totp(
    State(state): State<AppState>,
    AccountCaller(caller): AccountCaller,
) -> Result<Response, ApiError> {
    let enrolment = state
        .core()
        .mfa_factors
        .enrol_totp(&caller.auth.user, &state.ui().title)
        .await?;
    Ok(no_store(TotpEnrolmentBody {
        secret: enrolment.secret.as_str().to_owned(),
        otpauth_uri: enrolment.otpauth_uri.as_str().to_owned(),
    }))
}

/// `POST /v1/me/mfa/totp/confirm`: enables the pending TOTP factor with the
/// code the app shows, and answers ten recovery codes, once. From now on a
/// password alone does not sign in. A wrong code counts against the sign-in
/// limits.
#[utoipa::path(
    post,
    path = "/v1/me/mfa/totp/confirm",
    tag = "accounts",
    request_body(content(
        (TotpConfirm = "application/json"),
        (TotpConfirm = "application/x-www-form-urlencoded"),
    )),
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Enabled; the recovery codes, shown this once",
            body = RecoveryCodesBody,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::Unauthenticated),
        (status = 403, description = "The code is wrong (`wrong-code`), the origin or CSRF checks failed, or an application's token (`insufficient-scope`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No pending enrolment (`not-found`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The enrolment changed meanwhile (`conflict`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Client(client): Client,
    AccountCaller(caller): AccountCaller,
    Input { value, .. }: Input<TotpConfirm>,
) -> Result<Response, ApiError> {
    let codes = state
        .core()
        .mfa_factors
        .confirm_totp(&caller.auth.user, &value.code, &client)
        .await
        .map_err(|e| match e {
            // The caller is signed in; a 401 would read as "signed out".
            CoreError::InvalidCode => ApiError::new(
                ProblemKind::WrongCode,
                "the code is wrong: check the app's clock and try the current code",
            ),
            other => other.into(),
        })?;
    Ok(no_store(RecoveryCodesBody {
        recovery_codes: codes.iter().map(|c| c.as_str().to_owned()).collect(),
    }))
}

/// `DELETE /v1/me/mfa/totp`: disables TOTP, voiding the recovery codes,
/// once the password is right (a wrong one counts against the sign-in
/// limits).
#[utoipa::path(
    delete,
    path = "/v1/me/mfa/totp",
    tag = "accounts",
    request_body(content(
        (TotpDisable = "application/json"),
        (TotpDisable = "application/x-www-form-urlencoded"),
    )),
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Disabled: the password alone signs in again"),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::Unauthenticated),
        (status = 403, description = "The password is wrong (`wrong-password`), the origin or CSRF checks failed, or an application's token (`insufficient-scope`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "TOTP is not enabled or pending (`not-found`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 429, response = r::RateLimited),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn disable_totp(
    State(state): State<AppState>,
    Client(client): Client,
    AccountCaller(caller): AccountCaller,
    Input { value, .. }: Input<TotpDisable>,
) -> Result<StatusCode, ApiError> {
    state
        .core()
        .mfa_factors
        .disable_totp(&caller.auth.user, Zeroizing::new(value.password), &client)
        .await
        .map_err(|e| match e {
            CoreError::InvalidCredentials => {
                ApiError::new(ProblemKind::WrongPassword, "the password is wrong")
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/me/mfa/recovery-codes`: a new set of ten recovery codes,
/// answered once; every unused earlier code stops working.
#[utoipa::path(
    post,
    path = "/v1/me/mfa/recovery-codes",
    tag = "accounts",
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The new recovery codes, shown this once",
            body = RecoveryCodesBody,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401, response = r::Unauthenticated),
        (status = 403, description = "The origin or CSRF checks failed, or an application's token (`insufficient-scope`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "TOTP is not enabled (`not-found`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    Client(client): Client,
    AccountCaller(caller): AccountCaller,
) -> Result<Response, ApiError> {
    let codes = state
        .core()
        .mfa_factors
        .regenerate_recovery_codes(&caller.auth.user, &client)
        .await?;
    Ok(no_store(RecoveryCodesBody {
        recovery_codes: codes.iter().map(|c| c.as_str().to_owned()).collect(),
    }))
}
