//! The account page's form posts: change the password, end one session,
//! end the others, end them all, withdraw an application's access. Each is
//! CSRF-checked by [`SignedInForm`] and
//! answered with 303 (post/redirect/get); a refused password change shows
//! the account page again with the reason.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::CoreError;
use zeroize::Zeroizing;

use super::account;
use super::domain;
use super::layout::{see_other, with_cookie};
use super::page_error::{PageError, wait_message, with_retry_after};
use super::signed_in::{CsrfForm, NoFields, SignedInForm};
use crate::auth::Client;
use crate::openapi::responses as r;
use crate::state::AppState;

/// Where a browser goes once its own session has ended (when no
/// application asked for it back).
pub const SIGNED_OUT: &str = "/login?notice=signed-out";

/// The password change form.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordForm {
    /// The password now.
    current_password: String,
    /// The password from now on.
    new_password: String,
}

/// The form naming one session.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SessionForm {
    /// The session's public id.
    session: String,
}

/// The form naming one application the user allowed.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = RevokeConsentForm)]
pub struct ConsentForm {
    /// The OAuth client's id.
    client_id: String,
}

/// `POST /account/password`: changes the password; every other session ends.
#[utoipa::path(
    post,
    path = "/account/password",
    operation_id = "account_change_password",
    tag = "pages",
    request_body(content = CsrfForm<PasswordForm>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Changed (or signed out meanwhile: to the sign-in page); the session is rotated",
            headers(("Location" = String, description = "`/account?done=password`"),
                    ("Set-Cookie" = String, description = "The rotated session cookie"))),
        (status = 400, description = "The account page again: the new password is refused, and why",
            body = String, content_type = "text/html"),
        (status = 403, description = "The account page again: the current password is wrong (or an error page: the CSRF check failed)",
            body = String, content_type = "text/html"),
        (status = 429, description = "The account page again: too many wrong passwords",
            body = String, content_type = "text/html",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The account page again: the server is busy",
            body = String, content_type = "text/html",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, form }: SignedInForm<PasswordForm>,
) -> Response {
    let changed = domain::change_password(
        &state,
        &user.auth,
        Zeroizing::new(form.current_password),
        Zeroizing::new(form.new_password),
        &client,
    )
    .await;
    let (status, message, wait) = match changed {
        Ok(secret) => {
            // The session was replaced: the browser gets the new secret.
            let max_age = user.auth.session().absolute_expires_at - domain::now(&state);
            let cookie = secret.and_then(|s| state.http().cookie.set(&s, max_age));
            return with_cookie(see_other("/account?done=password"), cookie);
        }
        Err(CoreError::InvalidCredentials) => (
            StatusCode::FORBIDDEN,
            "The current password is wrong. Your password was not changed.".to_owned(),
            None,
        ),
        Err(CoreError::WeakPassword(reason)) => (
            StatusCode::BAD_REQUEST,
            format!("Choose another new password: {reason}."),
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
        // Signed out meanwhile (elsewhere, or by an administrator).
        Err(CoreError::Unauthenticated) => return see_other("/login?return_to=/account"),
        Err(other) => return PageError::from_core(other).render(&state),
    };
    let response = account::render(&state, &user, status, None, Some(message)).await;
    with_retry_after(response, wait)
}

/// `POST /account/sessions/revoke`: ends one session (this device's too).
#[utoipa::path(
    post,
    path = "/account/sessions/revoke",
    operation_id = "account_revoke_session",
    tag = "pages",
    request_body(content = CsrfForm<SessionForm>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Ended (or already gone); this device's own session: to the sign-in page, the cookie cleared; not signed in: to the sign-in page",
            headers(("Location" = String, description = "`/account?done=revoked`, `/account?done=gone`, or `/login?notice=signed-out`"),
                    ("Set-Cookie" = String, description = "Clears the cookie when this device's session ended"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn revoke_one(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, form }: SignedInForm<SessionForm>,
) -> Response {
    match domain::revoke_session(&state, user.auth.user.id, &form.session, &client).await {
        Ok(()) if form.session == user.auth.session().id.as_str() => signed_out(&state),
        Ok(()) => see_other("/account?done=revoked"),
        // Ended meanwhile, or never the user's: nothing left to do.
        Err(CoreError::NotFound) => see_other("/account?done=gone"),
        Err(other) => PageError::from_core(other).render(&state),
    }
}

/// `POST /account/sessions/revoke-others`: signs out every other device.
#[utoipa::path(
    post,
    path = "/account/sessions/revoke-others",
    operation_id = "account_revoke_other_sessions",
    tag = "pages",
    request_body(content = CsrfForm<NoFields>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Every other session ended (not signed in: to the sign-in page)",
            headers(("Location" = String, description = "`/account?done=others`"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn revoke_others(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, .. }: SignedInForm<NoFields>,
) -> Response {
    let keep = Some(&user.auth.session().id);
    match domain::revoke_sessions(&state, user.auth.user.id, keep, &client).await {
        Ok(_) => see_other("/account?done=others"),
        Err(e) => PageError::from_core(e).render(&state),
    }
}

/// `POST /account/sessions/revoke-all`: signs out everywhere, here too.
#[utoipa::path(
    post,
    path = "/account/sessions/revoke-all",
    operation_id = "account_revoke_all_sessions",
    tag = "pages",
    request_body(content = CsrfForm<NoFields>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Every session ended: to the sign-in page, the cookie cleared",
            headers(("Location" = String, description = "`/login?notice=signed-out`"),
                    ("Set-Cookie" = String, description = "Clears the session cookie"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn revoke_all(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, .. }: SignedInForm<NoFields>,
) -> Response {
    match domain::revoke_sessions(&state, user.auth.user.id, None, &client).await {
        Ok(_) => signed_out(&state),
        Err(e) => PageError::from_core(e).render(&state),
    }
}

/// `POST /account/consents/revoke`: withdraws an application's access and
/// ends every session it holds for the user (never this browser's own: a
/// cookie session is never an application's).
#[utoipa::path(
    post,
    path = "/account/consents/revoke",
    operation_id = "account_revoke_consent",
    tag = "pages",
    request_body(content = CsrfForm<ConsentForm>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Withdrawn (or there was nothing to withdraw); not signed in: to the sign-in page",
            headers(("Location" = String, description = "`/account?done=app-revoked` or `/account?done=app-gone`"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn revoke_consent(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, form }: SignedInForm<ConsentForm>,
) -> Response {
    match domain::revoke_consent(&state, user.auth.user.id, &form.client_id, &client).await {
        Ok(_) => see_other("/account?done=app-revoked"),
        // Withdrawn meanwhile, or never given: nothing left to do.
        Err(CoreError::NotFound) => see_other("/account?done=app-gone"),
        Err(other) => PageError::from_core(other).render(&state),
    }
}

/// 303 to the sign-in page, clearing the session cookie.
pub fn signed_out(state: &AppState) -> Response {
    with_cookie(see_other(SIGNED_OUT), state.http().cookie.clear())
}
