//! The web pages: sign-in, registration, the account page and sign-out,
//! rendered on the server from templates compiled into the binary (askama,
//! HTML-escaped), working without JavaScript (there is none), on the same
//! session cookie and CSRF token as the API.
//!
//! Every page carries [`layout::PAGE_CSP`]; the one stylesheet and the icon
//! are served from memory under hashed names ([`assets`]).

pub mod account;
pub mod account_actions;
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
pub mod query;
pub mod register;
pub mod return_to;
pub mod signed_in;
pub mod ui;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};

use crate::input::ApiPath;
use crate::state::AppState;

/// The pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::show).post(login::submit))
        .route("/register", get(register::show).post(register::submit))
        .route("/account", get(account::show))
        .route("/account/password", post(account_actions::change_password))
        .route(
            "/account/sessions/revoke",
            post(account_actions::revoke_one),
        )
        .route(
            "/account/sessions/revoke-others",
            post(account_actions::revoke_others),
        )
        .route(
            "/account/sessions/revoke-all",
            post(account_actions::revoke_all),
        )
        .route(
            "/account/consents/revoke",
            post(account_actions::revoke_consent),
        )
        .route("/logout", get(logout::confirm).post(logout::submit))
        .route(
            "/v1/logout",
            get(end_session::from_query).post(end_session::from_form),
        )
        .route(
            "/v1/authorize",
            get(authorize::authorize).post(authorize::consent),
        )
        .route("/assets/{file}", get(asset))
}

/// `GET /assets/{file}`: the stylesheet or the icon.
async fn asset(State(state): State<AppState>, ApiPath(file): ApiPath<String>) -> Response {
    state.assets().response(&file)
}
