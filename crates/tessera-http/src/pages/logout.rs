//! `/logout`: `GET` asks (a link must not sign anyone out: prefetchers and
//! foreign pages can follow links), `POST` signs out, CSRF-checked.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;

use super::account_actions::signed_out;
use super::domain;
use super::layout::{Layout, page};
use super::page_error::PageError;
use super::signed_in::{NoFields, SignedIn, SignedInForm};
use crate::auth::Client;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: String,
}

/// `GET /logout`: the one-button confirmation.
pub async fn confirm(State(state): State<AppState>, SignedIn(user): SignedIn) -> Response {
    page(
        StatusCode::OK,
        &LogoutPage {
            layout: Layout::signed_in(&state),
            username: user.auth.user.username.display(),
            csrf_token: domain::csrf_token(&state, &user.secret),
        },
    )
}

/// `POST /logout`: ends this device's session and clears the cookie.
pub async fn submit(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, .. }: SignedInForm<NoFields>,
) -> Response {
    match domain::sign_out(&state, &user.auth, &client).await {
        Ok(()) => signed_out(&state),
        Err(e) => PageError::from_core(e).render(&state),
    }
}
