//! Two-step verification on `/account`: what the section shows (off, a
//! pending enrolment with its QR code, on) and its form posts — set up,
//! confirm with a first code (the recovery codes shown once, on the page
//! that answers), new recovery codes, turn off with the password. Each post
//! is CSRF-checked by [`SignedInForm`]; mistakes show the account page
//! again with the reason.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::CoreError;
use zeroize::Zeroizing;

use super::account;
use super::domain;
use super::layout::see_other;
use super::page_error::{PageError, wait_message, with_retry_after};
use super::qr;
use super::signed_in::{CsrfForm, NoFields, PageUser, SignedInForm};
use crate::auth::Client;
use crate::openapi::responses as r;
use crate::state::AppState;

/// The section as the page shows it.
#[derive(Default)]
pub struct Section {
    /// TOTP is on.
    pub enabled: bool,
    /// Unused recovery codes left.
    pub recovery_left: u32,
    /// An enrolment waiting for its first code.
    pub pending: Option<Pending>,
    /// What went wrong with the last post.
    pub error: Option<String>,
    /// Recovery codes just made: shown this once.
    pub recovery_codes: Option<Vec<String>>,
}

/// A pending enrolment: what the authenticator app needs.
pub struct Pending {
    /// The key in base32, grouped by four for typing.
    pub secret: String,
    /// The `otpauth://` URI.
    pub uri: String,
    /// The URI as a QR code (inline SVG), if it fits one.
    pub qr_svg: Option<String>,
}

/// What the last post leaves for the section to say.
#[derive(Default)]
pub struct Note {
    /// An error.
    pub error: Option<String>,
    /// Recovery codes to show once.
    pub recovery_codes: Option<Vec<String>>,
}

/// The section for `user`, with `note`.
pub async fn section(state: &AppState, user: &PageUser, note: Note) -> Result<Section, CoreError> {
    let account = &user.auth.user;
    let status = domain::mfa_status(state, account.id).await?;
    let pending = if status.totp {
        None
    } else {
        domain::pending_totp(state, account)
            .await?
            .map(|p| Pending {
                secret: grouped(&p.secret),
                qr_svg: qr::svg(&p.otpauth_uri, "QR code for your authenticator app"),
                uri: p.otpauth_uri.as_str().to_owned(),
            })
    };
    Ok(Section {
        enabled: status.totp,
        recovery_left: status.recovery_codes,
        pending,
        error: note.error,
        recovery_codes: note.recovery_codes,
    })
}

/// The key in groups of four characters, as apps accept it typed.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The confirmation form.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConfirmForm {
    /// The code the authenticator app shows.
    code: String,
}

/// The form that turns TOTP off.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DisableForm {
    /// The account's password.
    password: String,
}

/// The account page again with an error in the section.
async fn again(state: &AppState, user: &PageUser, status: StatusCode, error: String) -> Response {
    let note = Note {
        error: Some(error),
        recovery_codes: None,
    };
    account::render_with(state, user, status, None, None, note).await
}

/// The account page showing fresh recovery codes, once.
async fn with_codes(state: &AppState, user: &PageUser, codes: Vec<Zeroizing<String>>) -> Response {
    let note = Note {
        error: None,
        recovery_codes: Some(codes.iter().map(|c| c.as_str().to_owned()).collect()),
    };
    account::render_with(
        state,
        user,
        StatusCode::OK,
        Some("Two-step verification is on. Save your recovery codes now."),
        None,
        note,
    )
    .await
}

/// `POST /account/mfa/totp`: starts (or restarts) setting up an
/// authenticator app; the account page then shows its QR code and key.
#[utoipa::path(
    post,
    path = "/account/mfa/totp",
    operation_id = "account_enrol_totp",
    tag = "pages",
    request_body(content = CsrfForm<NoFields>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Pending: the account page shows the QR code and the key",
            headers(("Location" = String, description = "`/account?done=totp-pending#two-step`"))),
        (status = 409, description = "The account page again: two-step verification is already on",
            body = String, content_type = "text/html"),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn enrol(
    State(state): State<AppState>,
    SignedInForm { user, form: _ }: SignedInForm<NoFields>,
) -> Response {
    match domain::enrol_totp(&state, &user.auth.user).await {
        Ok(_) => see_other("/account?done=totp-pending#two-step"),
        Err(CoreError::Conflict(_)) => {
            again(
                &state,
                &user,
                StatusCode::CONFLICT,
                "Two-step verification is already on.".to_owned(),
            )
            .await
        }
        Err(other) => PageError::from_core(other).render(&state),
    }
}

/// `POST /account/mfa/totp/confirm`: turns two-step verification on with
/// the app's first code, and shows the recovery codes, once.
#[utoipa::path(
    post,
    path = "/account/mfa/totp/confirm",
    operation_id = "account_confirm_totp",
    tag = "pages",
    request_body(content = CsrfForm<ConfirmForm>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "On: the account page with the recovery codes, shown this once",
            body = String, content_type = "text/html"),
        (status = 403, description = "The account page again: the code is wrong",
            body = String, content_type = "text/html"),
        (status = 404, description = "The account page again: nothing is being set up",
            body = String, content_type = "text/html"),
        (status = 429, description = "The account page again: too many wrong codes",
            body = String, content_type = "text/html",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn confirm(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, form }: SignedInForm<ConfirmForm>,
) -> Response {
    let (status, message, wait) =
        match domain::confirm_totp(&state, &user.auth.user, &form.code, &client).await {
            Ok(codes) => return with_codes(&state, &user, codes).await,
            Err(CoreError::InvalidCode) => (
                StatusCode::FORBIDDEN,
                "That code is wrong. Enter the code the app shows now.".to_owned(),
                None,
            ),
            Err(CoreError::NotFound | CoreError::Conflict(_)) => (
                StatusCode::NOT_FOUND,
                "Nothing is being set up any more: start again.".to_owned(),
                None,
            ),
            Err(CoreError::RateLimited { retry_after }) => (
                StatusCode::TOO_MANY_REQUESTS,
                wait_message("Too many wrong codes.", retry_after),
                Some(retry_after),
            ),
            Err(CoreError::Unauthenticated) => return see_other("/login?return_to=/account"),
            Err(other) => return PageError::from_core(other).render(&state),
        };
    with_retry_after(again(&state, &user, status, message).await, wait)
}

/// `POST /account/mfa/recovery-codes`: a new set of recovery codes, shown
/// once; the old ones stop working.
#[utoipa::path(
    post,
    path = "/account/mfa/recovery-codes",
    operation_id = "account_regenerate_recovery_codes",
    tag = "pages",
    request_body(content = CsrfForm<NoFields>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The account page with the new recovery codes, shown this once",
            body = String, content_type = "text/html"),
        (status = 404, description = "The account page again: two-step verification is off",
            body = String, content_type = "text/html"),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn regenerate(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, form: _ }: SignedInForm<NoFields>,
) -> Response {
    match domain::regenerate_recovery_codes(&state, &user.auth.user, &client).await {
        Ok(codes) => with_codes(&state, &user, codes).await,
        Err(CoreError::NotFound) => {
            again(
                &state,
                &user,
                StatusCode::NOT_FOUND,
                "Two-step verification is off.".to_owned(),
            )
            .await
        }
        Err(other) => PageError::from_core(other).render(&state),
    }
}

/// `POST /account/mfa/totp/disable`: turns two-step verification off (the
/// recovery codes stop working) once the password is right.
#[utoipa::path(
    post,
    path = "/account/mfa/totp/disable",
    operation_id = "account_disable_totp",
    tag = "pages",
    request_body(content = CsrfForm<DisableForm>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Off",
            headers(("Location" = String, description = "`/account?done=totp-off`"))),
        (status = 403, description = "The account page again: the password is wrong",
            body = String, content_type = "text/html"),
        (status = 429, description = "The account page again: too many wrong passwords",
            body = String, content_type = "text/html",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn disable(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, form }: SignedInForm<DisableForm>,
) -> Response {
    let outcome = domain::disable_totp(
        &state,
        &user.auth.user,
        Zeroizing::new(form.password),
        &client,
    )
    .await;
    let (status, message, wait) = match outcome {
        Ok(()) | Err(CoreError::NotFound) => return see_other("/account?done=totp-off"),
        Err(CoreError::InvalidCredentials) => (
            StatusCode::FORBIDDEN,
            "The password is wrong. Two-step verification is still on.".to_owned(),
            None,
        ),
        Err(CoreError::RateLimited { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            wait_message("Too many wrong passwords.", retry_after),
            Some(retry_after),
        ),
        Err(CoreError::Busy { retry_after }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            wait_message("The server is busy.", retry_after),
            Some(retry_after),
        ),
        Err(CoreError::Unauthenticated) => return see_other("/login?return_to=/account"),
        Err(other) => return PageError::from_core(other).render(&state),
    };
    with_retry_after(again(&state, &user, status, message).await, wait)
}
