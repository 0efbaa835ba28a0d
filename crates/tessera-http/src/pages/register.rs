//! `/register`: self-service registration, limited per address exactly as
//! `POST /v1/users` (the same domain call), login-CSRF protected; the new
//! user is signed in at once.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode, Uri};
use serde::Deserialize;
use tessera_core::CoreError;
use zeroize::Zeroizing;

use super::domain;
use super::form::PageForm;
use super::layout::{Layout, page, see_other, with_cookie};
use super::login_csrf::{self, LoginCsrf};
use super::page_error::{PageError, wait_message, with_retry_after};
use super::query::PageQuery;
use super::return_to::{DEFAULT, ReturnTo};
use super::signed_in::Visitor;
use crate::auth::Client;
use crate::openapi::responses as r;
use crate::state::AppState;

/// What went wrong, as the form shows it.
struct FormError {
    summary: String,
    reasons: Vec<String>,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    layout: Layout<'a>,
    csrf_token: String,
    login_link: String,
    username: &'a str,
    error: Option<FormError>,
    error_on_username: bool,
    error_on_password: bool,
}

/// The form's fields.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterForm {
    /// The username (1–64 characters).
    username: String,
    /// The password (8–1024 characters).
    password: String,
    /// The pre-session CSRF token of the form (bound to its cookie).
    #[serde(default)]
    csrf_token: Option<String>,
}

/// Which field a refusal is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Username,
    Password,
    Neither,
}

/// `GET /register`: the form (or, when already signed in, the account).
#[utoipa::path(
    get,
    path = "/register",
    operation_id = "register_page",
    tag = "pages",
    params(("return_to" = Option<String>, Query, description = "Carried on to the sign-in link")),
    responses(
        (status = 200, description = "The registration form", body = String, content_type = "text/html",
            headers(("Set-Cookie" = String, description = "The form's pre-session CSRF cookie"))),
        (status = 303, description = "Already signed in: to `/account`",
            headers(("Location" = String, description = "`/account`"))),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let return_to = ReturnTo::or_default_with(
        PageQuery::of(&uri).get("return_to"),
        &state.forward_auth().allowed_hosts,
    );
    if visitor.signed_in {
        return see_other(DEFAULT);
    }
    let (csrf, cookie) = match login_csrf::for_form(&state.http().cookie, &headers) {
        Ok(found) => found,
        Err(e) => return PageError::from_core(e.into()).render(&state),
    };
    let response = render(
        &state,
        StatusCode::OK,
        &csrf,
        &return_to,
        "",
        None,
        Field::Neither,
    );
    with_cookie(response, cookie)
}

/// `POST /register`: creates the account and signs in (303 to the account
/// page), or shows the form again with the reasons for refusing it.
#[utoipa::path(
    post,
    path = "/register",
    operation_id = "register_form",
    tag = "pages",
    request_body(content = RegisterForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Registered and signed in: to `/account` (or, should signing in fail, to `/login?notice=registered`)",
            headers(("Location" = String, description = "`/account`"),
                    ("Set-Cookie" = String, description = "The new session cookie"))),
        (status = 400, description = "The form again, with why the username or password is refused",
            body = String, content_type = "text/html"),
        (status = 409, description = "The form again: the username is taken",
            body = String, content_type = "text/html"),
        (status = 429, description = "The form again: too many registrations from this address",
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
    uri: Uri,
    PageForm(form): PageForm<RegisterForm>,
) -> Response {
    let return_to = ReturnTo::or_default_with(
        PageQuery::of(&uri).get("return_to"),
        &state.forward_auth().allowed_hosts,
    );
    if let Err(refused) = login_csrf::check(&state, &headers, form.csrf_token.as_deref()) {
        return refused
            .back_to("/register", "Back to registration")
            .render(&state);
    }
    let registered = domain::register(
        &state,
        &form.username,
        Zeroizing::new(form.password.clone()),
        &client,
    )
    .await;
    let (status, error, field, wait) = match registered {
        Ok(_) => return sign_in_new_user(&state, &client, &headers, form).await,
        Err(CoreError::InvalidUsername(reason)) => (
            StatusCode::BAD_REQUEST,
            refusal("This username cannot be used.", reason.to_string()),
            Field::Username,
            None,
        ),
        Err(CoreError::UsernameTaken) => (
            StatusCode::CONFLICT,
            refusal(
                "This username is taken. Choose another one, or sign in.",
                String::new(),
            ),
            Field::Username,
            None,
        ),
        Err(CoreError::WeakPassword(reason)) => (
            StatusCode::BAD_REQUEST,
            refusal("Choose another password.", reason.to_string()),
            Field::Password,
            None,
        ),
        Err(CoreError::TooManyRegistrations { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            refusal(
                &wait_message(
                    "Too many accounts were created from your network.",
                    retry_after,
                ),
                String::new(),
            ),
            Field::Neither,
            Some(retry_after),
        ),
        Err(CoreError::Busy { retry_after }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            refusal(
                &wait_message("The server is busy.", retry_after),
                String::new(),
            ),
            Field::Neither,
            Some(retry_after),
        ),
        Err(other) => {
            return PageError::from_core(other)
                .back_to("/register", "Back to registration")
                .render(&state);
        }
    };
    let Some(csrf) = LoginCsrf::from_request(&state.http().cookie, &headers) else {
        return PageError::csrf().render(&state);
    };
    let response = render(
        &state,
        status,
        &csrf,
        &return_to,
        &form.username,
        Some(error),
        field,
    );
    with_retry_after(response, wait)
}

/// Signs the new user in; should that fail (the server busy meanwhile),
/// the account exists, and the sign-in page says so.
async fn sign_in_new_user(
    state: &AppState,
    client: &tessera_core::client::ClientInfo,
    headers: &HeaderMap,
    form: RegisterForm,
) -> Response {
    let planted: Vec<_> = state.http().cookie.session_secrets(headers).collect();
    match domain::sign_in(
        state,
        &form.username,
        Zeroizing::new(form.password),
        false,
        &planted,
        client,
    )
    .await
    {
        Ok(signed_in) => {
            let max_age = signed_in.session.absolute_expires_at - signed_in.session.created_at;
            let response = with_cookie(
                see_other(DEFAULT),
                state.http().cookie.set(&signed_in.secret, max_age),
            );
            with_cookie(response, LoginCsrf::clear_cookie(&state.http().cookie))
        }
        Err(e) => {
            tracing::warn!(error = %e, "signing in a newly registered user failed");
            see_other("/login?notice=registered")
        }
    }
}

fn refusal(summary: &str, reason: String) -> FormError {
    let reasons = if reason.is_empty() {
        Vec::new()
    } else {
        let mut chars = reason.chars();
        let first: String = chars
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default();
        vec![format!("{first}{}.", chars.as_str())]
    };
    FormError {
        summary: summary.to_owned(),
        reasons,
    }
}

fn render(
    state: &AppState,
    status: StatusCode,
    csrf: &LoginCsrf,
    return_to: &ReturnTo,
    username: &str,
    error: Option<FormError>,
    field: Field,
) -> Response {
    page(
        status,
        &RegisterPage {
            layout: Layout::new(state),
            csrf_token: csrf.form_token(),
            login_link: return_to.link("/login"),
            username,
            error,
            error_on_username: field == Field::Username,
            error_on_password: field == Field::Password,
        },
    )
}
