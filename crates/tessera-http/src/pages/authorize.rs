//! `/v1/authorize`: the OAuth 2.1 authorization endpoint (authorization
//! code with PKCE S256, OpenID Connect). The browser signs in on the pages'
//! own `/login`, consents on a page of its own (remembered per user and
//! client), and is sent back to the client's registered redirect URI with
//! `code`, `state` and `iss` (RFC 9207). An unknown client or redirect URI
//! gets an error page, never a redirect.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use tessera_core::authenticated::Authenticated;
use tessera_core::authorization::{self, CodeRequest, SCOPES};
use tessera_core::oauth_client::OAuthClient;

use super::domain;
use super::layout::{Layout, allow_form_target, form_target, page, redirect_with};
use super::page_error::PageError;
use super::return_to::query_escape;
use super::signed_in::CsrfForm;
use super::signed_in::SignedInForm;
use crate::auth::{Client, cookie_session};
use crate::openapi::responses as r;
use crate::state::AppState;

/// Parameters that are echoed through the consent form.
const CARRIED: &[&str] = &[
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
];
/// Longest value accepted for any parameter.
const MAX_PARAM: usize = 2048;

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    layout: Layout<'a>,
    client_name: &'a str,
    username: &'a str,
    permissions: Vec<&'static str>,
    csrf_token: String,
    fields: Vec<(&'static str, String)>,
}

/// A validated authorization request.
#[derive(Debug, Clone)]
struct Request {
    client: OAuthClient,
    redirect_uri: String,
    state: Option<String>,
    scope: String,
    nonce: Option<String>,
    code_challenge: String,
}

/// What goes wrong once the client and redirect URI are known: told to
/// the client by redirect.
struct Redirected {
    error: &'static str,
    description: &'static str,
}

fn oauth_error(error: &'static str, description: &'static str) -> Redirected {
    Redirected { error, description }
}

/// The query's parameters; a repeated one is an error (RFC 6749 §3.1).
fn parameters(query: Option<&str>) -> Result<Vec<(String, String)>, &'static str> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|_| "the query string cannot be read")?;
    let mut seen: Vec<&str> = Vec::with_capacity(pairs.len());
    for (name, value) in &pairs {
        if seen.contains(&name.as_str()) {
            return Err("a parameter is repeated");
        }
        if value.len() > MAX_PARAM || value.contains('\0') {
            return Err("a parameter is too long or has a NUL character");
        }
        seen.push(name);
    }
    Ok(pairs)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// An error page for a request that cannot be sent back to any client.
fn bad_request(state: &AppState, message: &str) -> Response {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "This sign-in link is broken",
        message,
    )
    .render(state)
}

/// An error sent to the client (RFC 6749 §4.1.2.1, with `iss`).
fn error_redirect(state: &AppState, req_uri: &str, st: Option<&str>, e: &Redirected) -> Response {
    let iss = state.core().context.config().tokens.issuer.clone();
    let mut params = vec![("error", e.error), ("error_description", e.description)];
    if let Some(s) = st {
        params.push(("state", s));
    }
    params.push(("iss", &iss));
    redirect_with(StatusCode::FOUND, req_uri, &params)
}

/// `GET /v1/authorize`: the OAuth 2.1 authorization endpoint (code flow
/// with PKCE S256, OpenID Connect).
///
/// An unknown client or redirect URI gets an error page, never a redirect;
/// other errors go back to the client with `error`, `state` and `iss`.
#[utoipa::path(
    get,
    path = "/v1/authorize",
    tag = "pages",
    params(
        ("response_type" = String, Query, description = "`code`"),
        ("client_id" = String, Query, description = "The registered client"),
        ("redirect_uri" = String, Query, description = "One of the client's registered redirect URIs, exactly"),
        ("code_challenge" = String, Query, description = "PKCE: BASE64URL(SHA-256(code_verifier))"),
        ("code_challenge_method" = String, Query, description = "`S256`"),
        ("scope" = Option<String>, Query, description = "Space-separated: `openid`, `profile`"),
        ("state" = Option<String>, Query, description = "Echoed back to the client"),
        ("nonce" = Option<String>, Query, description = "Put in the ID token"),
        ("prompt" = Option<String>, Query, description = "`none` (answer `login_required` or `consent_required` instead of a page), `login` (sign in afresh), `consent`"),
        ("max_age" = Option<u64>, Query, description = "Seconds since the last sign-in beyond which the user signs in again"),
    ),
    security(("session_cookie" = []), ()),
    responses(
        (status = 200, description = "The consent page", body = String, content_type = "text/html"),
        (status = 302, description = "Back to the client's `redirect_uri` with `code`, `state` and `iss` (or `error`, `error_description`, `state`, `iss`); or, not signed in (or `prompt=login`), to the sign-in page, which comes back here",
            headers(("Location" = String, description = "The client's redirect URI, or `/login?return_to=…`"))),
        (status = 400, description = "An unknown client or redirect URI, or an unreadable query: an error page, never a redirect",
            body = String, content_type = "text/html"),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn authorize(State(state): State<AppState>, parts: Parts) -> Response {
    let pairs = match parameters(parts.uri.query()) {
        Ok(pairs) => pairs,
        Err(why) => return bad_request(&state, why),
    };
    let (Some(client_id), Some(redirect_uri)) =
        (param(&pairs, "client_id"), param(&pairs, "redirect_uri"))
    else {
        return bad_request(&state, "client_id and redirect_uri are required.");
    };
    let client = match state
        .core()
        .authorization
        .client_for_redirect(client_id, redirect_uri)
        .await
    {
        Ok(client) => client,
        Err(tessera_core::CoreError::NotFound) => {
            return bad_request(
                &state,
                "The application is unknown or asked to be answered at an address it did not register.",
            );
        }
        Err(e) => return PageError::from_core(e).render(&state),
    };
    let st = param(&pairs, "state");
    let request = match validate(&pairs, client, redirect_uri) {
        Ok(request) => request,
        Err(e) => return error_redirect(&state, redirect_uri, st, &e),
    };
    let prompt = param(&pairs, "prompt").unwrap_or_default();
    let prompts: Vec<&str> = prompt.split(' ').filter(|p| !p.is_empty()).collect();
    if prompts
        .iter()
        .any(|p| !matches!(*p, "none" | "login" | "consent"))
        || (prompts.contains(&"none") && prompts.len() > 1)
    {
        return error_redirect(
            &state,
            redirect_uri,
            st,
            &oauth_error("invalid_request", "prompt must be none, login or consent"),
        );
    }
    let max_age = match param(&pairs, "max_age").map(str::parse::<u32>) {
        None => None,
        Some(Ok(age)) => Some(i64::from(age)),
        Some(Err(_)) => {
            return error_redirect(
                &state,
                redirect_uri,
                st,
                &oauth_error("invalid_request", "max_age must be a number of seconds"),
            );
        }
    };
    let silent = prompts.contains(&"none");
    let auth = match cookie_session(&parts, &state).await {
        Ok(found) => Some(found),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => None,
        Err(e) => return PageError::from_api(&e).render(&state),
    };
    let now = domain::now(&state);
    let fresh_enough = |auth: &Authenticated| {
        max_age.is_none_or(|age| (now - auth.session().created_at).whole_seconds() <= age)
    };
    let (auth, secret) = match auth {
        Some((auth, secret)) if !prompts.contains(&"login") && fresh_enough(&auth) => {
            (auth, secret)
        }
        signed_in => {
            if silent {
                return error_redirect(
                    &state,
                    redirect_uri,
                    st,
                    &oauth_error("login_required", "the user must sign in"),
                );
            }
            return sign_in_first(&pairs, signed_in.is_some());
        }
    };
    let needs_consent = match state
        .core()
        .authorization
        .needs_consent(&request.client, auth.user.id, &request.scope)
        .await
    {
        Ok(needed) => needed || prompts.contains(&"consent"),
        Err(e) => return PageError::from_core(e).render(&state),
    };
    if needs_consent {
        if silent {
            return error_redirect(
                &state,
                redirect_uri,
                st,
                &oauth_error("consent_required", "the user must consent"),
            );
        }
        return consent_page(&state, &request, &auth, &secret);
    }
    issue(&state, &request, &auth).await
}

/// Everything but the user: the request's parameters checked.
fn validate(
    pairs: &[(String, String)],
    client: OAuthClient,
    redirect_uri: &str,
) -> Result<Request, Redirected> {
    match param(pairs, "response_type") {
        Some("code") => {}
        None => return Err(oauth_error("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(oauth_error(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    let Some(challenge) = param(pairs, "code_challenge") else {
        return Err(oauth_error(
            "invalid_request",
            "PKCE is required: send code_challenge and code_challenge_method=S256",
        ));
    };
    if param(pairs, "code_challenge_method") != Some("S256") {
        return Err(oauth_error(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if !authorization::valid_challenge(challenge) {
        return Err(oauth_error(
            "invalid_request",
            "code_challenge must be base64url of a SHA-256 digest",
        ));
    }
    let mut scopes: Vec<&str> = Vec::new();
    for scope in param(pairs, "scope").unwrap_or_default().split(' ') {
        if scope.is_empty() || scopes.contains(&scope) {
            continue;
        }
        if !SCOPES.contains(&scope) {
            return Err(oauth_error("invalid_scope", "a requested scope is unknown"));
        }
        scopes.push(scope);
    }
    Ok(Request {
        client,
        redirect_uri: redirect_uri.to_owned(),
        state: param(pairs, "state").map(str::to_owned),
        scope: scopes.join(" "),
        nonce: param(pairs, "nonce").map(str::to_owned),
        code_challenge: challenge.to_owned(),
    })
}

/// The sign-in page, then back here without `prompt` and `max_age` (the
/// sign-in just made satisfies both). A signed-in user is shown the form
/// again (`prompt=login`).
fn sign_in_first(pairs: &[(String, String)], signed_in: bool) -> Response {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(n, _)| n != "prompt" && n != "max_age")
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let query = serde_urlencoded::to_string(&kept).unwrap_or_default();
    let back = format!("/v1/authorize?{query}");
    let mut location = format!("/login?return_to={}", query_escape(&back));
    if signed_in {
        location.push_str("&prompt=login");
    }
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The consent page. Its form may lead (by redirect) to the client's
/// origin, which `form-action` must allow.
fn consent_page(
    state: &AppState,
    request: &Request,
    auth: &Authenticated,
    secret: &tessera_core::secret::Secret,
) -> Response {
    let permissions = super::permissions::describe(&request.scope);
    let client_id = request.client.id.to_string();
    let values = [
        Some(client_id.as_str()),
        Some(request.redirect_uri.as_str()),
        Some(request.scope.as_str()),
        request.state.as_deref(),
        request.nonce.as_deref(),
        Some(request.code_challenge.as_str()),
    ];
    let fields = CARRIED
        .iter()
        .zip(values)
        .filter_map(|(name, value)| value.map(|v| (*name, v.to_owned())))
        .collect();
    let response = page(
        StatusCode::OK,
        &ConsentPage {
            layout: Layout::signed_in(state),
            client_name: &request.client.name,
            username: auth.user.username.display(),
            permissions,
            csrf_token: domain::csrf_token(state, secret),
            fields,
        },
    );
    allow_form_target(response, form_target(&request.redirect_uri))
}

/// The CSP source the sign-in form must also allow when its `return_to` is
/// an authorization request: the browser follows the form post's redirects
/// on to the client's registered redirect URI, and browsers hold those
/// redirects to `form-action` too. Anything else (an allowed host's URL)
/// is its own origin.
pub(super) async fn onward_form_target(state: &AppState, return_to: &str) -> Option<String> {
    if !return_to.starts_with('/') {
        return form_target(return_to);
    }
    let (path, query) = return_to.split_once('?')?;
    if path != "/v1/authorize" {
        return None;
    }
    let pairs = parameters(Some(query)).ok()?;
    let redirect_uri = param(&pairs, "redirect_uri")?;
    state
        .core()
        .authorization
        .client_for_redirect(param(&pairs, "client_id")?, redirect_uri)
        .await
        .ok()?;
    form_target(redirect_uri)
}

/// A code, sent to the client.
async fn issue(state: &AppState, request: &Request, auth: &Authenticated) -> Response {
    let code = state
        .core()
        .authorization
        .issue_code(&CodeRequest {
            client: &request.client,
            user_id: auth.user.id,
            redirect_uri: &request.redirect_uri,
            code_challenge: &request.code_challenge,
            scope: &request.scope,
            nonce: request.nonce.as_deref(),
            auth_time: auth.session().created_at,
            amr: auth.session().amr,
        })
        .await;
    let code = match code {
        Ok(code) => code.expose(),
        Err(e) => return PageError::from_core(e).render(state),
    };
    let iss = state.core().context.config().tokens.issuer.clone();
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", &iss));
    redirect_with(StatusCode::FOUND, &request.redirect_uri, &params)
}

/// The consent form's fields: the authorization request carried through.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AuthorizeConsentForm)]
pub struct ConsentForm {
    /// The client.
    client_id: String,
    /// Its redirect URI.
    redirect_uri: String,
    /// The scopes asked for.
    #[serde(default)]
    scope: String,
    /// The client's `state`.
    state: Option<String>,
    /// The client's `nonce`.
    nonce: Option<String>,
    /// The PKCE challenge.
    code_challenge: String,
    /// `allow`, or anything else to deny.
    decision: String,
}

/// `POST /v1/authorize`: the consent page's answer.
#[utoipa::path(
    post,
    path = "/v1/authorize",
    operation_id = "authorize_consent",
    tag = "pages",
    request_body(content = CsrfForm<ConsentForm>, content_type = "application/x-www-form-urlencoded"),
    security(("session_cookie" = [])),
    responses(
        (status = 303, description = "Allowed: back to the client's `redirect_uri` with `code`, `state` and `iss`; or, not signed in, to the sign-in page",
            headers(("Location" = String, description = "The client's redirect URI, or `/login?return_to=…`"))),
        (status = 302, description = "Denied (`access_denied`) or refused: back to the client's `redirect_uri` with `error`, `state` and `iss`",
            headers(("Location" = String, description = "The client's redirect URI"))),
        (status = 400, description = "An unknown client or redirect URI: an error page",
            body = String, content_type = "text/html"),
        (status = "default", response = r::PageError),
    ),
)]
pub async fn consent(
    State(state): State<AppState>,
    Client(by): Client,
    form: SignedInForm<ConsentForm>,
) -> Response {
    let SignedInForm { user, form } = form;
    let client = match state
        .core()
        .authorization
        .client_for_redirect(&form.client_id, &form.redirect_uri)
        .await
    {
        Ok(client) => client,
        Err(_) => return bad_request(&state, "The application is unknown."),
    };
    let st = form.state.as_deref().filter(|s| !s.is_empty());
    let mut pairs = vec![
        ("response_type".to_owned(), "code".to_owned()),
        ("code_challenge_method".to_owned(), "S256".to_owned()),
        ("code_challenge".to_owned(), form.code_challenge.clone()),
        ("scope".to_owned(), form.scope.clone()),
    ];
    if let Some(nonce) = &form.nonce {
        pairs.push(("nonce".to_owned(), nonce.clone()));
    }
    if let Some(s) = st {
        pairs.push(("state".to_owned(), s.to_owned()));
    }
    let request = match validate(&pairs, client, &form.redirect_uri) {
        Ok(request) => request,
        Err(e) => return error_redirect(&state, &form.redirect_uri, st, &e),
    };
    if form.decision != "allow" {
        return error_redirect(
            &state,
            &form.redirect_uri,
            st,
            &oauth_error("access_denied", "the user denied the request"),
        );
    }
    if let Err(e) = state
        .core()
        .authorization
        .grant_consent(&request.client, user.auth.user.id, &request.scope, &by)
        .await
    {
        return PageError::from_core(e).render(&state);
    }
    let mut response = issue(&state, &request, &user.auth).await;
    if response.status() == StatusCode::FOUND {
        // The answer to a form post.
        *response.status_mut() = StatusCode::SEE_OTHER;
    }
    response
}
