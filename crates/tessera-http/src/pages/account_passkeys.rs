//! The account page's passkey forms: rename one, remove one. Each is
//! CSRF-checked by [`SignedInForm`] and answered with 303 back to
//! `/account` (post/redirect/get). Adding a passkey needs the WebAuthn
//! ceremony, which only a script can run: the page's script calls the JSON
//! API (`/v1/me/passkeys/register/*`) for it.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tessera_core::CoreError;
use uuid::Uuid;

use super::domain;
use super::layout::see_other;
use super::page_error::PageError;
use super::signed_in::{CsrfForm, SignedInForm};
use crate::auth::Client;
use crate::openapi::responses as r;
use crate::state::AppState;

/// The form naming one passkey.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasskeyForm {
    /// The passkey's id.
    passkey: String,
}

/// The form renaming one passkey.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RenamePasskeyForm {
    /// The passkey's id.
    passkey: String,
    /// Its new name (1–64 characters).
    name: String,
}

/// `POST /account/passkeys/rename`: renames one of the user's passkeys.
#[utoipa::path(
    post,
    path = "/account/passkeys/rename",
    operation_id = "account_rename_passkey",
    tag = "pages",
    request_body(content = CsrfForm<RenamePasskeyForm>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Renamed, gone meanwhile, or the name refused; not signed in: to the sign-in page",
            headers(("Location" = String, description = "`/account?done=passkey-renamed`, `passkey-gone` or `passkey-name`"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn rename(
    State(state): State<AppState>,
    SignedInForm { user, form }: SignedInForm<RenamePasskeyForm>,
) -> Response {
    // A malformed id names no passkey of the user's.
    let Ok(id) = Uuid::parse_str(&form.passkey) else {
        return see_other("/account?done=passkey-gone");
    };
    match domain::rename_passkey(&state, user.auth.user.id, id, &form.name).await {
        Ok(()) => see_other("/account?done=passkey-renamed"),
        Err(CoreError::NotFound) => see_other("/account?done=passkey-gone"),
        Err(CoreError::PasskeyRefused(_)) => see_other("/account?done=passkey-name"),
        Err(other) => PageError::from_core(other).render(&state),
    }
}

/// `POST /account/passkeys/remove`: removes one of the user's passkeys
/// (audited). Sessions it signed in go on: they are ended from the list of
/// sessions.
#[utoipa::path(
    post,
    path = "/account/passkeys/remove",
    operation_id = "account_remove_passkey",
    tag = "pages",
    request_body(content = CsrfForm<PasskeyForm>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Removed (or gone meanwhile); not signed in: to the sign-in page",
            headers(("Location" = String, description = "`/account?done=passkey-removed` or `/account?done=passkey-gone`"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, form }: SignedInForm<PasskeyForm>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&form.passkey) else {
        return see_other("/account?done=passkey-gone");
    };
    match domain::remove_passkey(&state, user.auth.user.id, id, &client).await {
        Ok(()) => see_other("/account?done=passkey-removed"),
        Err(CoreError::NotFound) => see_other("/account?done=passkey-gone"),
        Err(other) => PageError::from_core(other).render(&state),
    }
}
