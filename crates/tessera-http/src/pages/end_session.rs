//! `/v1/logout`: the OpenID Connect `end_session_endpoint` (RP-Initiated
//! Logout 1.0), `GET` with a query or `POST` with a form. With a valid
//! `id_token_hint` the application asked: the session the hint names ends,
//! and so does this browser's session when it is the same user's. Without
//! one, a signed-in visitor is asked first (a link must not sign anyone
//! out). The browser goes back only to a `post_logout_redirect_uri` the
//! client registered, with `state`; anything else gets an error page.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use http::request::Parts;
use serde::Deserialize;
use tessera_core::rp_logout::LogoutRequest;

use super::account_actions::SIGNED_OUT;
use super::domain;
use super::form::PageForm;
use super::layout::{redirect_with, see_other, with_cookie};
use super::logout;
use super::page_error::PageError;
use crate::auth::{Client, cookie_session};
use crate::body::decode_form;
use crate::input::into_typed;
use crate::openapi::responses as r;
use crate::state::AppState;

/// The request's parameters (others, such as `ui_locales` and
/// `logout_hint`, are ignored). Empty values count as absent.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogoutParams {
    /// An ID token this server issued (expired or not): names the session to end.
    #[serde(default)]
    id_token_hint: Option<String>,
    /// The application asking (the hint's audience, when both are given).
    #[serde(default)]
    client_id: Option<String>,
    /// Where to send the browser afterwards: one the client registered.
    #[serde(default)]
    post_logout_redirect_uri: Option<String>,
    /// Echoed back to `post_logout_redirect_uri`.
    #[serde(default)]
    state: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

impl LogoutParams {
    /// The application's `state`, echoed back.
    pub fn state(&self) -> Option<&str> {
        given(&self.state)
    }

    /// The named client.
    pub fn client_id(&self) -> Option<&str> {
        given(&self.client_id)
    }

    /// Where the application wants the browser back.
    pub fn post_logout_redirect_uri(&self) -> Option<&str> {
        given(&self.post_logout_redirect_uri)
    }
}

/// `GET /v1/logout`: RP-initiated logout (the `end_session_endpoint`).
#[utoipa::path(
    get,
    path = "/v1/logout",
    operation_id = "end_session",
    tag = "pages",
    params(LogoutParams),
    security(("session_cookie" = []), ()),
    responses(
        (status = 303, description = "Signed out (with a valid hint: the hinted session, and this browser's when it is the same user's) or nothing to do: to the registered `post_logout_redirect_uri` with `state`, else to the sign-in page",
            headers(("Location" = String, description = "The application's address, or `/login?notice=signed-out`"),
                    ("Set-Cookie" = String, description = "Clears the session cookie when this browser's session ended"))),
        (status = 200, description = "No hint and signed in: a page asking to confirm the sign-out", body = String, content_type = "text/html"),
        (status = 400, description = "A refused request (bad hint, unknown client, `client_id` not the hint's audience, unregistered `post_logout_redirect_uri`): an error page, nothing ended",
            body = String, content_type = "text/html"),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn from_query(
    State(state): State<AppState>,
    Client(client): Client,
    parts: Parts,
) -> Response {
    let params = match parts.uri.query() {
        None => Ok(LogoutParams::default()),
        Some(query) => decode_form(query.as_bytes()).and_then(into_typed),
    };
    match params {
        Ok(params) => end_session(&state, &client, &parts, params).await,
        Err(_) => broken(
            &state,
            "The sign-out link cannot be read: a parameter is repeated or malformed.",
        ),
    }
}

/// `POST /v1/logout` (the same parameters, form-encoded).
#[utoipa::path(
    post,
    path = "/v1/logout",
    operation_id = "end_session_form",
    tag = "pages",
    request_body(content = LogoutParams, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = []), ()),
    responses(
        (status = 303, description = "Signed out (with a valid hint: the hinted session, and this browser's when it is the same user's) or nothing to do: to the registered `post_logout_redirect_uri` with `state`, else to the sign-in page",
            headers(("Location" = String, description = "The application's address, or `/login?notice=signed-out`"),
                    ("Set-Cookie" = String, description = "Clears the session cookie when this browser's session ended"))),
        (status = 200, description = "No hint and signed in: a page asking to confirm the sign-out", body = String, content_type = "text/html"),
        (status = 400, description = "A refused request (bad hint, unknown client, `client_id` not the hint's audience, unregistered `post_logout_redirect_uri`): an error page, nothing ended",
            body = String, content_type = "text/html"),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn from_form(
    State(state): State<AppState>,
    Client(client): Client,
    parts: Parts,
    PageForm(params): PageForm<LogoutParams>,
) -> Response {
    end_session(&state, &client, &parts, params).await
}

async fn end_session(
    state: &AppState,
    client: &tessera_core::client::ClientInfo,
    parts: &Parts,
    params: LogoutParams,
) -> Response {
    let request = match check(state, &params, given(&params.id_token_hint)).await {
        Ok(request) => request,
        Err(page) => return page,
    };
    let browser = match cookie_session(parts, state).await {
        Ok(found) => Some(found),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => None,
        Err(e) => return PageError::from_api(&e).render(state),
    };
    if request.hint.is_none() {
        return match browser {
            // Nobody vouches for this request: the visitor confirms.
            Some((auth, secret)) => {
                logout::confirm_for(state, &auth, &secret, &request, params.state())
            }
            None => back(&request, params.state(), None),
        };
    }
    if let Err(e) = state
        .core()
        .rp_logout
        .end_hinted_session(&request, client)
        .await
    {
        return PageError::from_core(e).render(state);
    }
    let mut cleared = None;
    if let Some((auth, _)) = browser.filter(|(auth, _)| Some(auth.user.id) == request.hinted_user())
    {
        if let Err(e) = domain::sign_out(state, &auth, client).await {
            return PageError::from_core(e).render(state);
        }
        cleared = state.http().cookie.clear();
    }
    back(&request, params.state(), cleared)
}

/// Checks a request (with or without a hint); an error page when refused.
pub async fn check(
    state: &AppState,
    params: &LogoutParams,
    id_token_hint: Option<&str>,
) -> Result<LogoutRequest, Response> {
    match state
        .core()
        .rp_logout
        .check(
            id_token_hint,
            params.client_id(),
            params.post_logout_redirect_uri(),
        )
        .await
    {
        Ok(Ok(request)) => Ok(request),
        Ok(Err(refusal)) => Err(broken(state, &refusal.to_string())),
        Err(e) => Err(PageError::from_core(e).render(state)),
    }
}

/// The error page for a request that must not send the browser anywhere.
fn broken(state: &AppState, why: &str) -> Response {
    PageError::new(StatusCode::BAD_REQUEST, "This sign-out link is broken", why).render(state)
}

/// The browser sent on: to the application's registered address with
/// `state`, or to the signed-out notice; the cookie cleared if `cleared`.
pub fn back(
    request: &LogoutRequest,
    app_state: Option<&str>,
    cleared: Option<http::HeaderValue>,
) -> Response {
    let response = match &request.post_logout_redirect_uri {
        Some(uri) => {
            let params: Vec<(&str, &str)> = app_state.map(|s| ("state", s)).into_iter().collect();
            redirect_with(StatusCode::SEE_OTHER, uri, &params)
        }
        None => see_other(SIGNED_OUT),
    };
    with_cookie(response, cleared)
}
