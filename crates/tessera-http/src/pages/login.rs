//! `/login`: the sign-in form, and signing in with it. Throttled exactly as
//! `POST /v1/session` (the same domain call), login-CSRF protected, and
//! sending the browser on only to a path of this server or to a host of
//! `forward_auth.allowed_hosts`.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode, Uri};
use serde::Deserialize;
use tessera_core::CoreError;
use zeroize::Zeroizing;

use super::authorize;
use super::domain;
use super::form::PageForm;
use super::layout::{Layout, allow_form_target, page, see_other, with_cookie, with_script};
use super::login_csrf::{self, LoginCsrf};
use super::page_error::{PageError, wait_message, with_retry_after};
use super::query::PageQuery;
use super::return_to::ReturnTo;
use super::signed_in::Visitor;
use crate::auth::Client;
use crate::input::form_bool;
use crate::openapi::responses as r;
use crate::problem::ApiError;
use crate::state::AppState;

/// The one message for every wrong credential: which part was wrong (or
/// whether the user exists) is not told.
const WRONG_CREDENTIALS: &str = "The username or password is wrong.";
/// The second step came too late, or from elsewhere, or twice.
const EXPIRED_STEP: &str = "That sign-in took too long or was already finished. Sign in again.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    layout: Layout<'a>,
    csrf_token: String,
    return_to: &'a str,
    register_link: String,
    username: &'a str,
    remember_me: bool,
    error: Option<String>,
    notice: Option<&'static str>,
    /// Offer "Sign in with a passkey" (where the script finds WebAuthn).
    passkeys: bool,
}

#[derive(Template)]
#[template(path = "login_code.html")]
struct CodePage<'a> {
    layout: Layout<'a>,
    csrf_token: String,
    return_to: &'a str,
    mfa_token: &'a str,
    restart_link: String,
    error: Option<String>,
    /// Ask for a code (a TOTP factor or recovery codes exist).
    codes: bool,
    /// Offer "Use a passkey" (the user has one; the script runs it).
    passkey: bool,
}

/// The form's fields: the first step's `username` and `password`, or the
/// second step's `mfa_token` and `code` (for a user with two-step
/// verification).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    /// The username (first step).
    #[serde(default)]
    username: Option<String>,
    /// The password (first step).
    #[serde(default)]
    password: Option<String>,
    /// The second step's token (the code page's hidden field).
    #[serde(default)]
    mfa_token: Option<String>,
    /// The second step's code: from the authenticator app, or a recovery code.
    #[serde(default)]
    code: Option<String>,
    /// The checkbox: keep the session for `session.remember_me_timeout`.
    #[serde(default, deserialize_with = "form_bool")]
    remember_me: bool,
    /// Where to go once signed in (a path here, or a URL on an allowed host).
    #[serde(default)]
    return_to: Option<String>,
    /// The pre-session CSRF token of the form (bound to its cookie).
    #[serde(default)]
    csrf_token: Option<String>,
}

/// What `?notice=` may ask the sign-in page to say (nothing else is shown:
/// no text of the URL reaches the page).
fn notice(query: &PageQuery) -> Option<&'static str> {
    match query.get("notice")? {
        "signed-out" => Some("You are signed out."),
        "registered" => Some("Your account is ready. Sign in to continue."),
        _ => None,
    }
}

/// `GET /login`: the form (or, when already signed in, straight on).
#[utoipa::path(
    get,
    path = "/login",
    operation_id = "login_page",
    tag = "pages",
    params(
        ("return_to" = Option<String>, Query, description = "Where to go once signed in: a path of this server, or a URL on a host of `forward_auth.allowed_hosts` (anything else is ignored)"),
        ("notice" = Option<String>, Query, description = "`signed-out` or `registered`: a notice to show"),
        ("prompt" = Option<String>, Query, description = "`login`: show the form even when signed in"),
    ),
    responses(
        (status = 200, description = "The sign-in form", body = String, content_type = "text/html",
            headers(("Set-Cookie" = String, description = "The form's pre-session CSRF cookie"))),
        (status = 303, description = "Already signed in: on to `return_to` (or `/account`)",
            headers(("Location" = String, description = "`return_to`, or `/account`"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = PageQuery::of(&uri);
    let return_to =
        ReturnTo::or_default_with(query.get("return_to"), &state.forward_auth().allowed_hosts);
    // `prompt=login` (from the authorization endpoint) asks for a fresh
    // sign-in even when one is live.
    if visitor.signed_in && query.get("prompt") != Some("login") {
        return see_other(return_to.as_str());
    }
    let (csrf, cookie) = match login_csrf::for_form(&state.http().cookie, &headers) {
        Ok(found) => found,
        Err(e) => return PageError::from_core(e.into()).render(&state),
    };
    let target = authorize::onward_form_target(&state, return_to.as_str()).await;
    let response = render(
        &state,
        StatusCode::OK,
        &csrf,
        &return_to,
        "",
        false,
        None,
        notice(&query),
    );
    with_cookie(allow_form_target(response, target), cookie)
}

/// `POST /login`: signs in and sends the browser on (303), or shows the
/// form again with what went wrong.
#[utoipa::path(
    post,
    path = "/login",
    operation_id = "login_form",
    tag = "pages",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The password is right and the user has two-step verification: the code page (fields `code`, and `mfa_token` hidden)",
            body = String, content_type = "text/html"),
        (status = 303, description = "Signed in: on to `return_to` (or `/account`)",
            headers(("Location" = String, description = "`return_to`, or `/account`"),
                    ("Set-Cookie" = String, description = "The new session cookie"))),
        (status = 403, description = "The form again: the username or password is wrong (which one is not told); or the code page again: the code is wrong; or the form again: the second step came too late",
            body = String, content_type = "text/html"),
        (status = 429, description = "The form again: too many failed sign-ins, try again in N s",
            body = String, content_type = "text/html",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The form again: the server is busy",
            body = String, content_type = "text/html",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn submit(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> Response {
    let return_to = ReturnTo::or_default_with(
        form.return_to.as_deref(),
        &state.forward_auth().allowed_hosts,
    );
    if let Err(refused) = login_csrf::check(&state, &headers, form.csrf_token.as_deref()) {
        return refused
            .back_to(return_to.link("/login"), "Back to sign-in")
            .render(&state);
    }
    let planted: Vec<_> = state.http().cookie.session_secrets(&headers).collect();
    if let Some(mfa_token) = form.mfa_token.as_deref() {
        let code = form.code.as_deref().unwrap_or_default();
        return second_step(
            &state, &client, &headers, &return_to, mfa_token, code, &planted,
        )
        .await;
    }
    let (Some(username), Some(password)) = (form.username, form.password) else {
        return PageError::from_api(&ApiError::bad_request(
            "the form needs `username` and `password`",
        ))
        .back_to(return_to.link("/login"), "Back to sign-in")
        .render(&state);
    };
    let outcome = domain::sign_in(
        &state,
        &username,
        Zeroizing::new(password),
        form.remember_me,
        &planted,
        &client,
    )
    .await;
    let (status, message, wait) = match outcome {
        Ok(signed_in) => {
            let max_age = signed_in.session.absolute_expires_at - signed_in.session.created_at;
            let response = with_cookie(
                see_other(return_to.as_str()),
                state.http().cookie.set(&signed_in.secret, max_age),
            );
            return with_cookie(response, LoginCsrf::clear_cookie(&state.http().cookie));
        }
        Err(CoreError::MfaRequired(token)) => {
            return code_page(
                &state,
                &headers,
                &client,
                &return_to,
                &token.expose(),
                StatusCode::OK,
                None,
            )
            .await;
        }
        Err(CoreError::InvalidCredentials | CoreError::InvalidUsername(_)) => {
            (StatusCode::FORBIDDEN, WRONG_CREDENTIALS.to_owned(), None)
        }
        Err(CoreError::RateLimited { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            wait_message("Too many failed sign-ins.", retry_after),
            Some(retry_after),
        ),
        Err(CoreError::Busy { retry_after }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            wait_message("The server is busy.", retry_after),
            Some(retry_after),
        ),
        Err(other) => {
            return PageError::from_core(other)
                .back_to(return_to.link("/login"), "Back to sign-in")
                .render(&state);
        }
    };
    // The check above found the cookie: the same token goes in the form.
    let Some(csrf) = LoginCsrf::from_request(&state.http().cookie, &headers) else {
        return PageError::csrf().render(&state);
    };
    let target = authorize::onward_form_target(&state, return_to.as_str()).await;
    let response = render(
        &state,
        status,
        &csrf,
        &return_to,
        &username,
        form.remember_me,
        Some(message),
        None,
    );
    with_retry_after(allow_form_target(response, target), wait)
}

/// The second step: the code page's post. Signed in → 303 on; a wrong
/// code or a wait → the code page again; a token that no longer holds
/// (expired, used, another address) → the sign-in form again.
async fn second_step(
    state: &AppState,
    client: &tessera_core::client::ClientInfo,
    headers: &HeaderMap,
    return_to: &ReturnTo,
    mfa_token: &str,
    code: &str,
    planted: &[tessera_core::secret::Secret],
) -> Response {
    let outcome = domain::complete_mfa(state, mfa_token, code, planted, client).await;
    let (status, message, wait) = match outcome {
        Ok(signed_in) => {
            let max_age = signed_in.session.absolute_expires_at - signed_in.session.created_at;
            let response = with_cookie(
                see_other(return_to.as_str()),
                state.http().cookie.set(&signed_in.secret, max_age),
            );
            return with_cookie(response, LoginCsrf::clear_cookie(&state.http().cookie));
        }
        Err(CoreError::InvalidCode) => (
            StatusCode::FORBIDDEN,
            "That code is wrong or was used already.".to_owned(),
            None,
        ),
        Err(CoreError::RateLimited { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            wait_message("Too many wrong codes.", retry_after),
            Some(retry_after),
        ),
        Err(CoreError::InvalidMfaToken) => {
            let Some(csrf) = LoginCsrf::from_request(&state.http().cookie, headers) else {
                return PageError::csrf().render(state);
            };
            let target = authorize::onward_form_target(state, return_to.as_str()).await;
            let response = render(
                state,
                StatusCode::FORBIDDEN,
                &csrf,
                return_to,
                "",
                false,
                Some(EXPIRED_STEP.to_owned()),
                None,
            );
            return allow_form_target(response, target);
        }
        Err(other) => {
            return PageError::from_core(other)
                .back_to(return_to.link("/login"), "Back to sign-in")
                .render(state);
        }
    };
    with_retry_after(
        code_page(
            state,
            headers,
            client,
            return_to,
            mfa_token,
            status,
            Some(message),
        )
        .await,
        wait,
    )
}

/// The second step's form, carrying `mfa_token` in a hidden field.
async fn code_page(
    state: &AppState,
    headers: &HeaderMap,
    client: &tessera_core::client::ClientInfo,
    return_to: &ReturnTo,
    mfa_token: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let Some(csrf) = LoginCsrf::from_request(&state.http().cookie, headers) else {
        return PageError::csrf().render(state);
    };
    let target = authorize::onward_form_target(state, return_to.as_str()).await;
    // What the user can finish with; a token that cannot finish at all
    // gets the code form, whose post then says so.
    let factors = domain::second_factors(state, mfa_token, client).await;
    let passkey = state.core().passkeys.available() && factors.is_some_and(|f| f.passkeys > 0);
    let codes = factors.is_none_or(|f| f.totp || f.recovery_codes > 0);
    let layout = if passkey {
        Layout::new(state).with_passkeys(state)
    } else {
        Layout::new(state)
    };
    let response = page(
        status,
        &CodePage {
            layout,
            csrf_token: csrf.form_token(),
            return_to: return_to.as_str(),
            mfa_token,
            restart_link: return_to.link("/login"),
            error,
            codes,
            passkey,
        },
    );
    let response = if passkey {
        with_script(response)
    } else {
        response
    };
    allow_form_target(response, target)
}

#[allow(clippy::too_many_arguments)]
fn render(
    state: &AppState,
    status: StatusCode,
    csrf: &LoginCsrf,
    return_to: &ReturnTo,
    username: &str,
    remember_me: bool,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Response {
    let passkeys = state.core().passkeys.available();
    let layout = if passkeys {
        Layout::new(state).with_passkeys(state)
    } else {
        Layout::new(state)
    };
    let response = page(
        status,
        &LoginPage {
            layout,
            csrf_token: csrf.form_token(),
            return_to: return_to.as_str(),
            register_link: return_to.link("/register"),
            username,
            remember_me,
            error,
            notice,
            passkeys,
        },
    );
    if passkeys {
        with_script(response)
    } else {
        response
    }
}
