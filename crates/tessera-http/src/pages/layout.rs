//! What every page shares: the frame around its content (product name,
//! stylesheet, icon), and the answer that carries a rendered page with the
//! pages' strict Content-Security-Policy.

use askama::Template;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::state::AppState;

/// No script at all, styles and images from this origin only (no inline
/// style either), forms posting only here, never framed, no `<base>`.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// [`PAGE_CSP`] for a page running the passkey script: scripts and
/// requests (`fetch` to the API) from this origin too, still none inline.
pub const PAGE_CSP_WITH_SCRIPT: &str = "default-src 'none'; script-src 'self'; \
    connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// Browsers send `Origin: null` with the form posts of a page whose policy
/// is `no-referrer` (the API's default), which the origin check must
/// refuse; `same-origin` keeps the real origin on the pages' own posts and
/// still sends nothing to other sites.
pub const PAGE_REFERRER_POLICY: &str = "same-origin";

/// The frame of every page.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// Product name (`ui.title`).
    pub product: &'a str,
    /// Path of the stylesheet.
    pub stylesheet: &'a str,
    /// Path of the icon.
    pub icon: &'a str,
    /// Whether a user is signed in (the header then links to the account).
    pub signed_in: bool,
    /// Path of the passkey script, on the pages that run it (see
    /// [`with_script`]).
    pub script: Option<&'a str>,
}

impl<'a> Layout<'a> {
    /// The frame for a visitor who is not signed in.
    pub fn new(state: &'a AppState) -> Self {
        Self {
            product: &state.ui().title,
            stylesheet: state.assets().stylesheet_path(),
            icon: state.assets().icon_path(),
            signed_in: false,
            script: None,
        }
    }

    /// The same frame, loading the passkey script (the page's answer must
    /// then go through [`with_script`]).
    pub fn with_passkeys(self, state: &'a AppState) -> Self {
        Self {
            script: Some(state.assets().script_path()),
            ..self
        }
    }

    /// The frame for a signed-in user.
    pub fn signed_in(state: &'a AppState) -> Self {
        Self {
            signed_in: true,
            ..Self::new(state)
        }
    }
}

/// A rendered page with `status`. Rendering fails only if formatting does,
/// which no template here can make happen; a plain 500 covers it anyway.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static(PAGE_REFERRER_POLICY),
            );
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "the page failed to render; the cause is in the server log\n",
            )
                .into_response()
        }
    }
}

/// `303 See Other` to `location` (a path on this server): the answer to a
/// form post, so that reloading the next page does not post again.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        // Every location is a checked path; this is only the type's due.
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/account")]).into_response(),
    }
}

/// `status` (a redirect) to a client's registered `url` with `params`
/// added to its query.
pub fn redirect_with(status: StatusCode, url: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(url) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if !params.is_empty() {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => (status, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The CSP source of a URL a form may lead to by redirect: its origin, or
/// its scheme (a native app's redirect URI).
pub fn form_target(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => Some(format!("{}:", url.scheme())),
    }
}

/// Lets the page's forms lead (by redirect) to `target` as well as here.
pub fn allow_form_target(mut response: Response, target: Option<String>) -> Response {
    let Some(target) = target else {
        return response;
    };
    let current = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(PAGE_CSP);
    let csp = current.replace(
        "form-action 'self'",
        &format!("form-action 'self' {target}"),
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// A page's answer with [`PAGE_CSP_WITH_SCRIPT`]: for pages whose layout
/// loads the passkey script.
pub fn with_script(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP_WITH_SCRIPT),
    );
    response
}

/// Adds a `Set-Cookie` header to `response` when `cookie` was built.
pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
