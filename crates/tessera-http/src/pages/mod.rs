//! The web pages: sign-in, registration, the account page and sign-out,
//! rendered on the server from templates compiled into the binary (askama,
//! HTML-escaped), working without JavaScript, on the same session cookie
//! and CSRF token as the API. One script exists, for passkeys (WebAuthn
//! has no form): `/login` and `/account` load it, and only what needs it
//! (signing in with a passkey, adding one) depends on it.
//!
//! Every page carries [`layout::PAGE_CSP`] (those loading the script
//! [`layout::PAGE_CSP_WITH_SCRIPT`]); the stylesheet, the icon and the
//! script are served from memory under hashed names ([`assets`]).

pub mod account;
pub mod account_actions;
pub mod account_passkeys;
pub mod assets;
pub mod authorize;
pub mod device;
pub mod domain;
pub mod end_session;
pub mod form;
pub mod layout;
pub mod login;
pub mod login_csrf;
pub mod logout;
pub mod page_error;
pub mod permissions;
pub mod qr;
pub mod query;
pub mod register;
pub mod return_to;
pub mod signed_in;
pub mod two_step;
pub mod ui;

use axum::extract::State;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::input::ApiPath;
use crate::state::AppState;

/// The pages' routes, each documented where its handler is.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login::show, login::submit))
        .routes(routes!(register::show, register::submit))
        .routes(routes!(account::show))
        .routes(routes!(account_actions::change_password))
        .routes(routes!(account_actions::revoke_one))
        .routes(routes!(account_actions::revoke_others))
        .routes(routes!(account_actions::revoke_all))
        .routes(routes!(account_actions::revoke_consent))
        .routes(routes!(account_passkeys::rename))
        .routes(routes!(account_passkeys::remove))
        .routes(routes!(two_step::enrol))
        .routes(routes!(two_step::confirm))
        .routes(routes!(two_step::regenerate))
        .routes(routes!(two_step::disable))
        .routes(routes!(logout::confirm, logout::submit))
        .routes(routes!(end_session::from_query, end_session::from_form))
        .routes(routes!(authorize::authorize, authorize::consent))
        .routes(routes!(asset))
}

/// `GET /assets/{file}`: the stylesheet, the icon or the passkey script.
///
/// Their names carry a hash of their content, so they are cached for good.
#[utoipa::path(
    get,
    path = "/assets/{file}",
    tag = "pages",
    params(("file" = String, Path, description = "`style.<hash>.css`, `icon.<hash>.svg` or `passkeys.<hash>.js`, as the pages link them")),
    responses(
        (status = 200, description = "The file",
            content(
                (String = "text/css"),
                (String = "image/svg+xml"),
                (String = "text/javascript"),
            ),
            headers(("Cache-Control" = String, description = "Immutable, cached for a year"))),
        (status = 404, description = "No such file", body = String, content_type = "text/plain"),
        (status = "default", response = crate::openapi::responses::OtherProblem),
    ),
)]
async fn asset(State(state): State<AppState>, ApiPath(file): ApiPath<String>) -> Response {
    state.assets().response(&file)
}
