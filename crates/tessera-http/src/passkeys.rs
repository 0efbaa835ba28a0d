//! Passkeys (WebAuthn): the signed-in user's passkeys under
//! `/v1/me/passkeys` (list, register, rename, remove), and signing in with
//! a passkey alone under `/v1/passkeys/authenticate/*`.
//!
//! Each ceremony has a start, answering the options for
//! `navigator.credentials.create()` / `.get()` with a `ceremony_id`, and a
//! finish, taking that id with the browser's answer as JSON (binary values
//! in base64url, as `PublicKeyCredential.toJSON()` writes them).

use crate::json::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::passkey::PasskeyRecord;
use tessera_core::passkeys::Started;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{AccountCaller, Client};
use crate::cookie_session::{SessionBody, answer_signed_in};
use crate::input::{ApiPath, Input, form_bool};
use crate::oauth::{TokenResponse, token_response};
use crate::openapi::responses as r;
use crate::problem::ApiError;
use crate::problem::ProblemBody as Problem;
use crate::state::AppState;

/// A registered passkey, as its user sees it (never its key material).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    /// Its id (for renaming or removing it).
    pub id: Uuid,
    /// The name its user gave it.
    pub name: String,
    /// When it was registered.
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    pub created_at: OffsetDateTime,
    /// When it last signed in, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<&PasskeyRecord> for PasskeyView {
    fn from(p: &PasskeyRecord) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// `GET /v1/me/passkeys`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasskeysView {
    /// The user's passkeys, oldest first.
    pub passkeys: Vec<PasskeyView>,
}

/// A ceremony begun.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CeremonyStarted {
    /// Send it back with the browser's answer; single use, valid 5 minutes.
    pub ceremony_id: Uuid,
    /// `{"publicKey": …}`: the options for `navigator.credentials.create()`
    /// (registration) or `.get()` (sign-in), binary values in base64url.
    #[schema(value_type = Object)]
    pub options: Value,
}

impl From<Started> for CeremonyStarted {
    fn from(s: Started) -> Self {
        Self {
            ceremony_id: s.ceremony_id,
            options: s.options,
        }
    }
}

/// `POST /v1/me/passkeys/register/finish` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishRegistration {
    /// The id `register/start` answered.
    ceremony_id: Uuid,
    /// A name for the passkey (1–64 characters), to tell it apart in the list.
    name: String,
    /// The browser's answer to `navigator.credentials.create()`
    /// (`PublicKeyCredential` as JSON: `id`, `rawId`, `type`, `response`
    /// with `clientDataJSON` and `attestationObject`).
    #[schema(value_type = Object)]
    credential: Value,
}

/// `PATCH /v1/me/passkeys/{id}` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// The new name (1–64 characters).
    name: String,
}

/// `POST /v1/passkeys/authenticate/finish` and `…/finish-token` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishSignIn {
    /// The id `authenticate/start` answered.
    ceremony_id: Uuid,
    /// The browser's answer to `navigator.credentials.get()`
    /// (`PublicKeyCredential` as JSON: `id`, `rawId`, `type`, `response`
    /// with `clientDataJSON`, `authenticatorData`, `signature`, `userHandle`).
    #[schema(value_type = Object)]
    credential: Value,
    /// Keep the cookie session for `session.remember_me_timeout` (cookie
    /// sign-in only).
    #[serde(default, deserialize_with = "form_bool")]
    remember_me: bool,
}

/// `GET /v1/me/passkeys`: the signed-in user's passkeys.
#[utoipa::path(
    get,
    path = "/v1/me/passkeys",
    operation_id = "list_my_passkeys",
    tag = "me",
    security(("session_cookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The user's passkeys, oldest first", body = PasskeysView),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    AccountCaller(caller): AccountCaller,
) -> Result<Json<PasskeysView>, ApiError> {
    let passkeys = state.core().passkeys.list(caller.auth.user.id).await?;
    Ok(Json(PasskeysView {
        passkeys: passkeys.iter().map(PasskeyView::from).collect(),
    }))
}

/// `POST /v1/me/passkeys/register/start`: options to create a passkey for
/// the signed-in user (discoverable, user verification required, none of
/// the user's passkeys again).
#[utoipa::path(
    post,
    path = "/v1/me/passkeys/register/start",
    operation_id = "start_passkey_registration",
    tag = "me",
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The creation options and the ceremony's id", body = CeremonyStarted),
        (status = 400, description = "The account holds the most passkeys allowed (`passkey-refused`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 404, response = r::PasskeysUnavailable),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn start_registration(
    State(state): State<AppState>,
    AccountCaller(caller): AccountCaller,
) -> Result<Json<CeremonyStarted>, ApiError> {
    let started = state
        .core()
        .passkeys
        .start_registration(&caller.auth.user)
        .await?;
    Ok(Json(started.into()))
}

/// `POST /v1/me/passkeys/register/finish`: checks the browser's answer
/// against the ceremony the same user began and registers the passkey.
#[utoipa::path(
    post,
    path = "/v1/me/passkeys/register/finish",
    operation_id = "finish_passkey_registration",
    tag = "me",
    request_body(content((FinishRegistration = "application/json"))),
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = PasskeyView),
        (status = 400, description = "A malformed body or answer (`invalid-request`, `passkey-refused`); a bad name; an answer that does not verify (wrong challenge, origin or relying party, bad attestation); a ceremony expired, spent or begun by someone else; a passkey registered already (`passkey-refused`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 404, response = r::PasskeysUnavailable),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn finish_registration(
    State(state): State<AppState>,
    Client(client): Client,
    AccountCaller(caller): AccountCaller,
    Input { value, .. }: Input<FinishRegistration>,
) -> Result<Response, ApiError> {
    let record = state
        .core()
        .passkeys
        .finish_registration(
            &caller.auth.user,
            value.ceremony_id,
            &value.name,
            value.credential,
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(PasskeyView::from(&record))).into_response())
}

/// `PATCH /v1/me/passkeys/{id}`: renames one of the user's passkeys.
#[utoipa::path(
    patch,
    path = "/v1/me/passkeys/{id}",
    operation_id = "rename_my_passkey",
    tag = "me",
    params(("id" = Uuid, Path, description = "The passkey's id")),
    request_body(content(
        (Rename = "application/json"),
        (Rename = "application/x-www-form-urlencoded"),
    )),
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Renamed"),
        (status = 400, description = "A malformed body or id (`invalid-request`), or a bad name (`passkey-refused`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 404, response = r::NotFound),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn rename(
    State(state): State<AppState>,
    AccountCaller(caller): AccountCaller,
    ApiPath(id): ApiPath<Uuid>,
    Input { value, .. }: Input<Rename>,
) -> Result<StatusCode, ApiError> {
    state
        .core()
        .passkeys
        .rename(caller.auth.user.id, id, &value.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/me/passkeys/{id}`: removes one of the user's passkeys
/// (audited); 404 unless it is theirs.
#[utoipa::path(
    delete,
    path = "/v1/me/passkeys/{id}",
    operation_id = "remove_my_passkey",
    tag = "me",
    params(("id" = Uuid, Path, description = "The passkey's id")),
    security(("session_cookie" = [], "csrf_token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AccountRefused),
        (status = 404, response = r::NotFound),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    Client(client): Client,
    AccountCaller(caller): AccountCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .core()
        .passkeys
        .remove(caller.auth.user.id, id, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/passkeys/authenticate/start`: options to sign in with a
/// passkey alone (no user named: the authenticator offers the passkeys it
/// holds for this site).
#[utoipa::path(
    post,
    path = "/v1/passkeys/authenticate/start",
    operation_id = "start_passkey_sign_in",
    tag = "sessions",
    responses(
        (status = 200, description = "The request options and the ceremony's id", body = CeremonyStarted),
        (status = 403, response = r::CsrfRefused),
        (status = 429, description = "Over 100 ceremonies begun from this address within `rate_limit.window` (`rate-limited`)",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 404, response = r::PasskeysUnavailable),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn start_sign_in(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<Json<CeremonyStarted>, ApiError> {
    state.http().origins.check(&headers)?;
    let started = state.core().passkeys.start_sign_in(&client).await?;
    Ok(Json(started.into()))
}

/// `POST /v1/session/mfa/passkey` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSecondFactor {
    /// The `mfa_token` of the `mfa-required` answer (not spent here).
    mfa_token: String,
}

/// `POST /v1/session/mfa/passkey`: options to prove the second factor of a
/// sign-in with one of the user's passkeys; the answer goes to `POST
/// /v1/session/mfa` (or the MFA grant) with `ceremony_id` and `credential`.
#[utoipa::path(
    post,
    path = "/v1/session/mfa/passkey",
    operation_id = "start_passkey_second_factor",
    tag = "sessions",
    request_body(content(
        (StartSecondFactor = "application/json"),
        (StartSecondFactor = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The request options (the user's passkeys) and the ceremony's id", body = CeremonyStarted),
        (status = 400, response = r::InvalidRequest),
        (status = 401, description = "The token is unknown, expired, used or from another address, or its user has no passkey (`invalid-mfa-token`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, response = r::CsrfRefused),
        (status = 404, response = r::PasskeysUnavailable),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn start_second_factor(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Input { value, .. }: Input<StartSecondFactor>,
) -> Result<Json<CeremonyStarted>, ApiError> {
    state.http().origins.check(&headers)?;
    let started = state
        .core()
        .mfa_sign_in
        .start_passkey(&value.mfa_token, &client)
        .await?;
    Ok(Json(started.into()))
}

/// `POST /v1/passkeys/authenticate/finish`: signs in with the browser's
/// answer and starts a cookie session, as `POST /v1/session` does
/// (sessions named by cookies already on the request end first).
#[utoipa::path(
    post,
    path = "/v1/passkeys/authenticate/finish",
    operation_id = "finish_passkey_sign_in",
    tag = "sessions",
    request_body(content((FinishSignIn = "application/json"))),
    responses(
        (status = 200, description = "Signed in", body = SessionBody,
            headers(("Set-Cookie" = String, description = "The new session cookie"))),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::PasskeyNotAccepted),
        (status = 403, response = r::CsrfRefused),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 404, response = r::PasskeysUnavailable),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn finish_sign_in(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Input { value, .. }: Input<FinishSignIn>,
) -> Result<Response, ApiError> {
    // Login CSRF: a foreign site must not sign the browser into its account.
    state.http().origins.check(&headers)?;
    let core = state.core();
    let proof = core
        .passkeys
        .finish_sign_in(value.ceremony_id, value.credential, &client)
        .await?;
    let planted: Vec<_> = state.http().cookie.session_secrets(&headers).collect();
    let signed_in = core
        .cookie_sessions
        .sign_in_with_passkey(proof, value.remember_me, &planted, &client)
        .await?;
    answer_signed_in(&state, &signed_in)
}

/// `POST /v1/passkeys/authenticate/finish-token`: signs in with the
/// browser's answer and starts a token session (for a first-party
/// application, as the password grant does).
#[utoipa::path(
    post,
    path = "/v1/passkeys/authenticate/finish-token",
    operation_id = "finish_passkey_sign_in_for_tokens",
    tag = "sessions",
    request_body(content((FinishSignIn = "application/json"))),
    responses(
        (status = 200, description = "Signed in: a token pair", body = TokenResponse),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::PasskeyNotAccepted),
        (status = 403, response = r::CsrfRefused),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 404, response = r::PasskeysUnavailable),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn finish_sign_in_for_tokens(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Input { value, .. }: Input<FinishSignIn>,
) -> Result<Response, ApiError> {
    state.http().origins.check(&headers)?;
    let core = state.core();
    let proof = core
        .passkeys
        .finish_sign_in(value.ceremony_id, value.credential, &client)
        .await?;
    let grant = core
        .token_sessions
        .sign_in_with_passkey(proof, &client)
        .await?;
    Ok(token_response(grant))
}
