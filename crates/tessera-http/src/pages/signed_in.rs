//! The signed-in user of a page: the same session cookie as the API's, and
//! for form posts the same origin and CSRF checks (the session's token, in
//! the form's `csrf_token` field). A visitor who is not signed in is sent
//! to the sign-in page, and back afterwards.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::Response;
use http::request::Parts;
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tessera_core::authenticated::Authenticated;
use tessera_core::secret::Secret;

use super::domain;
use super::form::{back_link, decode, refused};
use super::layout::see_other;
use super::page_error::PageError;
use super::return_to::{ReturnTo, query_escape};
use crate::auth::cookie_session;
use crate::csrf::{CSRF_FIELD, check_token};
use crate::input::into_typed;
use crate::state::AppState;

/// A signed-in user and the secret of their session cookie.
#[derive(Debug)]
pub struct PageUser {
    /// User and session.
    pub auth: Authenticated,
    /// The cookie's secret (for the CSRF token).
    pub secret: Secret,
}

/// The signed-in user of a page being read (`GET`).
#[derive(Debug)]
pub struct SignedIn(pub PageUser);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        find(parts, state).await.map(SignedIn)
    }
}

/// A signed-in user's form post, decoded into `T`, once it has passed the
/// origin and CSRF checks; otherwise the answer is a redirect to `/login`
/// (not signed in) or an error page (4xx).
#[derive(Debug)]
pub struct SignedInForm<T> {
    /// Who posted.
    pub user: PageUser,
    /// The form's other fields.
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for SignedInForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let user = find(&mut parts, state).await?;
        let back = back_link(parts.uri.path());
        let headers = parts.headers.clone();
        let mut fields = match decode(Request::from_parts(parts, body)).await {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => serde_json::Map::new(),
            Err(e) => return Err(refused(&e, back, state)),
        };
        let given = match fields.remove(CSRF_FIELD) {
            Some(Value::String(token)) => Some(token),
            _ => None,
        };
        let expected = domain::csrf_token(state, &user.secret);
        let allowed = state.http().origins.check(&headers).is_ok()
            && check_token(&expected, &headers, given.as_deref()).is_ok();
        if !allowed {
            return Err(PageError::csrf().render(state));
        }
        match into_typed(Value::Object(fields)) {
            Ok(form) => Ok(SignedInForm { user, form }),
            Err(e) => Err(refused(&e, back, state)),
        }
    }
}

/// A post with no field but its CSRF token.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct NoFields {}

/// A signed-in page's form post: the form's own fields and the session's
/// CSRF token.
// The OpenAPI document's view of what `SignedInForm` reads: it takes the
// token out before typing the rest.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct CsrfForm<T> {
    /// The session's CSRF token (the hidden field of the page's form).
    pub csrf_token: String,
    /// The form's fields.
    #[serde(flatten)]
    pub fields: T,
}

/// The user behind the request's session cookie, or the answer for a
/// visitor who has none.
async fn find(parts: &mut Parts, state: &AppState) -> Result<PageUser, Response> {
    match cookie_session(parts, state).await {
        Ok((auth, secret)) => Ok(PageUser { auth, secret }),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => Err(see_other(&sign_in_first(parts))),
        Err(e) => Err(PageError::from_api(&e).render(state)),
    }
}

/// Whether the visitor of a page that anyone may see is signed in.
#[derive(Debug, Clone, Copy)]
pub struct Visitor {
    /// A live session cookie came with the request.
    pub signed_in: bool,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match cookie_session(parts, state).await {
            Ok(_) => Ok(Visitor { signed_in: true }),
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => Ok(Visitor { signed_in: false }),
            Err(e) => Err(PageError::from_api(&e).render(state)),
        }
    }
}

/// Where a visitor goes who is not signed in: the sign-in page, then back
/// to the page asked for (a form post goes back to the account page).
fn sign_in_first(parts: &Parts) -> String {
    let reading = parts.method == Method::GET || parts.method == Method::HEAD;
    // Nobody signs in in order to be asked whether to sign out.
    let wanted = (reading && parts.uri.path() != "/logout")
        .then(|| parts.uri.path_and_query().map(|p| p.as_str()))
        .flatten();
    let back = ReturnTo::or_default(wanted);
    format!("/login?return_to={}", query_escape(back.as_str()))
}
