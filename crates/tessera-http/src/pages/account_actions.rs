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
use super::signed_in::{NoFields, SignedInForm};
use crate::auth::Client;
use crate::state::AppState;

/// Where a browser goes once its own session has ended (when no
/// application asked for it back).
pub const SIGNED_OUT: &str = "/login?notice=signed-out";

/// The password change form.
#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// The form naming one session.
#[derive(Deserialize)]
pub struct SessionForm {
    session: String,
}

/// The form naming one application the user allowed.
#[derive(Deserialize)]
pub struct ConsentForm {
    client_id: String,
}

/// `POST /account/password`.
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
            let max_age = user.auth.session.absolute_expires_at - domain::now(&state);
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
pub async fn revoke_one(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, form }: SignedInForm<SessionForm>,
) -> Response {
    match domain::revoke_session(&state, user.auth.user.id, &form.session, &client).await {
        Ok(()) if form.session == user.auth.session.id.as_str() => signed_out(&state),
        Ok(()) => see_other("/account?done=revoked"),
        // Ended meanwhile, or never the user's: nothing left to do.
        Err(CoreError::NotFound) => see_other("/account?done=gone"),
        Err(other) => PageError::from_core(other).render(&state),
    }
}

/// `POST /account/sessions/revoke-others`: signs out every other device.
pub async fn revoke_others(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, .. }: SignedInForm<NoFields>,
) -> Response {
    let keep = Some(&user.auth.session.id);
    match domain::revoke_sessions(&state, user.auth.user.id, keep, &client).await {
        Ok(_) => see_other("/account?done=others"),
        Err(e) => PageError::from_core(e).render(&state),
    }
}

/// `POST /account/sessions/revoke-all`: signs out everywhere, here too.
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
