//! The signed-in user of a page: the same session cookie as the API's, and
//! for form posts the same origin and CSRF checks (the session's token in
//! the `csrf_token` field). A visitor who is not signed in is sent to the
//! sign-in page, and back afterwards.

use axum::extract::FromRequestParts;
use axum::response::Response;
use http::request::Parts;
use http::{Method, StatusCode};
use tessera_core::secret::Secret;
use tessera_core::service::Authenticated;

use super::layout::see_other;
use super::page_error::PageError;
use super::return_to::{ReturnTo, query_escape};
use crate::auth::{Carrier, cookie_session, csrf_checked};
use crate::state::AppState;

/// A signed-in user and the secret of their session cookie.
#[derive(Debug)]
pub struct PageUser {
    /// User and session.
    pub auth: Authenticated,
    /// The cookie's secret (for the CSRF token).
    pub secret: Secret,
}

/// The extractor: a [`PageUser`] whose form post (if any) passed the CSRF
/// checks; otherwise the answer is a redirect to `/login` or an error page.
#[derive(Debug)]
pub struct SignedIn(pub PageUser);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let found = match cookie_session(parts, state).await {
            Ok(found) => found,
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
                return Err(see_other(&sign_in_first(parts)));
            }
            Err(e) => return Err(PageError::from_api(&e).render(state)),
        };
        match csrf_checked(parts, state, found) {
            Ok(caller) => match caller.carrier {
                Carrier::Cookie(secret) => Ok(SignedIn(PageUser {
                    auth: caller.auth,
                    secret,
                })),
                Carrier::Bearer => Err(see_other(&sign_in_first(parts))),
            },
            Err(e) => Err(PageError::from_api(&e).render(state)),
        }
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
    let wanted = if parts.method == Method::GET || parts.method == Method::HEAD {
        parts.uri.path_and_query().map(|p| p.as_str())
    } else {
        None
    };
    let back = ReturnTo::or_default(wanted);
    format!("/login?return_to={}", query_escape(back.as_str()))
}
