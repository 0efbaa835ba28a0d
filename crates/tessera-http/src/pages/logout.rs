//! `/logout`: `GET` asks (a link must not sign anyone out: prefetchers and
//! foreign pages can follow links), `POST` signs out, CSRF-checked. The same
//! question answers an application's sign-out request that carries no
//! `id_token_hint` (`/v1/logout`); its form then also carries where the
//! application wants the browser back.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use tessera_core::authenticated::Authenticated;
use tessera_core::rp_logout::LogoutRequest;
use tessera_core::secret::Secret;

use super::account_actions::signed_out;
use super::domain;
use super::end_session::{self, LogoutParams};
use super::layout::{Layout, allow_form_target, form_target, page};
use super::page_error::PageError;
use super::signed_in::{CsrfForm, SignedIn, SignedInForm};
use crate::auth::Client;
use crate::openapi::responses as r;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: String,
    app_name: Option<&'a str>,
    fields: Vec<(&'static str, String)>,
}

/// `GET /logout`: the one-button confirmation.
#[utoipa::path(
    get,
    path = "/logout",
    operation_id = "logout_page",
    tag = "pages",
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The confirmation page", body = String, content_type = "text/html"),
        (status = 303, response = r::SignInFirst),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn confirm(State(state): State<AppState>, SignedIn(user): SignedIn) -> Response {
    page(
        StatusCode::OK,
        &LogoutPage {
            layout: Layout::signed_in(&state),
            username: user.auth.user.username.display(),
            csrf_token: domain::csrf_token(&state, &user.secret),
            app_name: None,
            fields: Vec::new(),
        },
    )
}

/// The confirmation for an application's sign-out request: its form leads
/// (by redirect) back to the application's registered address.
pub fn confirm_for(
    state: &AppState,
    auth: &Authenticated,
    secret: &Secret,
    request: &LogoutRequest,
    app_state: Option<&str>,
) -> Response {
    let mut fields = Vec::new();
    if let Some(client) = &request.client {
        fields.push(("client_id", client.id.to_string()));
    }
    if let Some(uri) = &request.post_logout_redirect_uri {
        fields.push(("post_logout_redirect_uri", uri.clone()));
    }
    if let Some(app_state) = app_state {
        fields.push(("state", app_state.to_owned()));
    }
    let response = page(
        StatusCode::OK,
        &LogoutPage {
            layout: Layout::signed_in(state),
            username: auth.user.username.display(),
            csrf_token: domain::csrf_token(state, secret),
            app_name: request.client.as_ref().map(|c| c.name.as_str()),
            fields,
        },
    );
    let target = request
        .post_logout_redirect_uri
        .as_deref()
        .and_then(form_target);
    allow_form_target(response, target)
}

/// `POST /logout`: ends this device's session and clears the cookie, then
/// sends the browser back to the application that asked, if one did.
#[utoipa::path(
    post,
    path = "/logout",
    operation_id = "logout_form",
    tag = "pages",
    request_body(content = CsrfForm<LogoutParams>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Signed out: to the application's registered `post_logout_redirect_uri` (with `state`) when one asked, else to the sign-in page; not signed in: to the sign-in page",
            headers(("Location" = String, description = "The application's address, or `/login?notice=signed-out`"),
                    ("Set-Cookie" = String, description = "Clears the session cookie"))),
        (status = 400, description = "An application's address that is not registered: an error page, nothing ended",
            body = String, content_type = "text/html"),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn submit(
    State(state): State<AppState>,
    Client(client): Client,
    SignedInForm { user, form }: SignedInForm<LogoutParams>,
) -> Response {
    let asked = form.client_id().is_some() || form.post_logout_redirect_uri().is_some();
    // Checked before signing out: a refused address must change nothing.
    let request = if asked {
        match end_session::check(&state, &form, None).await {
            Ok(request) => Some(request),
            Err(page) => return page,
        }
    } else {
        None
    };
    if let Err(e) = domain::sign_out(&state, &user.auth, &client).await {
        return PageError::from_core(e).render(&state);
    }
    match request {
        Some(request) => end_session::back(&request, form.state(), state.http().cookie.clear()),
        None => signed_out(&state),
    }
}
