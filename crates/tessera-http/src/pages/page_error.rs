//! Errors as pages: whatever goes wrong behind a page (a form that cannot
//! be read, a refused CSRF token, an unreachable store) is answered with a
//! page in the same frame, with the right 4xx or 5xx status, never with the
//! API's JSON.

use askama::Template;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use tessera_core::CoreError;

use super::layout::{Layout, page};
use crate::problem::ApiError;
use crate::state::AppState;

/// An error shown as a page.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    heading: &'static str,
    message: String,
    retry_after: Option<u64>,
    back: (String, &'static str),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout<'a>,
    heading: &'a str,
    message: &'a str,
    back_href: &'a str,
    back_label: &'a str,
}

impl PageError {
    /// An error page with `status`, a heading and a message.
    pub fn new(status: StatusCode, heading: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            heading,
            message: message.into(),
            retry_after: None,
            back: ("/account".into(), "Go to your account"),
        }
    }

    /// The same error, pointing back to `href` instead of the account page.
    pub fn back_to(mut self, href: impl Into<String>, label: &'static str) -> Self {
        self.back = (href.into(), label);
        self
    }

    /// A form post without the right CSRF token, or from another site.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was not sent from this site's page, or the page was open too long \
             (or you signed in or out elsewhere meanwhile). Nothing was changed. \
             Go back, reload the page and try again.",
        )
    }

    /// What an API error means for a page: the status is kept, the message
    /// is the API's human-readable detail.
    pub fn from_api(e: &ApiError) -> Self {
        let heading = match e.status() {
            StatusCode::FORBIDDEN => return Self::csrf(),
            StatusCode::PAYLOAD_TOO_LARGE => "The form is too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "The form could not be read",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            StatusCode::SERVICE_UNAVAILABLE => "Please try again shortly",
            status if status.is_client_error() => "The form could not be read",
            _ => "Something went wrong",
        };
        let mut error = Self::new(e.status(), heading, capitalised(e.detail()));
        error.retry_after = e.retry_after();
        error
    }

    /// An error of the domain that the page has no better words for.
    pub fn from_core(e: CoreError) -> Self {
        Self::from_api(&ApiError::from(e))
    }

    /// The page.
    pub fn render(self, state: &AppState) -> Response {
        let response = page(
            self.status,
            &ErrorPage {
                layout: Layout::new(state),
                heading: self.heading,
                message: &self.message,
                back_href: &self.back.0,
                back_label: self.back.1,
            },
        );
        with_retry_after(response, self.retry_after)
    }
}

/// The API's details start in lower case; a page's sentences do not.
fn capitalised(detail: &str) -> String {
    let mut chars = detail.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// A wait as people read it: "try again in 42 s" stays exact.
pub fn wait_message(what: &str, retry_after: u64) -> String {
    format!("{what} Try again in {retry_after} s.")
}

/// Adds `Retry-After` when there is a wait to tell.
pub fn with_retry_after(mut response: Response, seconds: Option<u64>) -> Response {
    if let Some(seconds) = seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
