//! `GET /v1/auth/forward`: forward authentication, for nginx
//! `auth_request`, Traefik `ForwardAuth` and Caddy `forward_auth`. Before
//! passing a request on to an application, the proxy sends its cookies (or
//! bearer token) here: 200 with the user in `X-Tessera-*` headers lets it
//! through, 403 refuses it (`?role=` not held), 401 sends it away, or, for
//! a browser on an allowed host, a 302 to the sign-in page that comes back.
//!
//! This runs on every proxied request, so it is `/v1/me` without the JSON:
//! the same [`Caller`] extractor (and so the same caches), headers only, no
//! body. It is a GET that changes nothing, so it needs no CSRF token.
//!
//! The answer may reach the browser as the application's own (Traefik and
//! Caddy hand non-2xx answers over as they are), so it is marked
//! [`ForOtherHosts`]: no HSTS policy is set for a host that is not ours.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use tessera_core::user::User;

use crate::allowed_hosts::MAX_URL_CHARS;
use crate::auth::Caller;
use crate::middleware::security_headers::ForOtherHosts;
use crate::pages::return_to::{percent_decode, query_escape};
use crate::problem::ApiError;
use crate::state::AppState;

/// The user's id (a UUID, the tokens' `sub`).
pub const USER_ID: HeaderName = HeaderName::from_static("x-tessera-user-id");
/// The username as the user wrote it (UTF-8).
pub const USERNAME: HeaderName = HeaderName::from_static("x-tessera-username");
/// The user's roles, comma-separated; present and empty when none.
pub const ROLES: HeaderName = HeaderName::from_static("x-tessera-roles");
/// The session the request belongs to (cookie or token session).
pub const SESSION_ID: HeaderName = HeaderName::from_static("x-tessera-session-id");

/// The original URL in one header (`$scheme://$host$request_uri`).
const ORIGINAL_URL: &str = "x-original-url";
/// The original request in parts, as Traefik and Caddy send it.
const FORWARDED_PROTO: &str = "x-forwarded-proto";
const FORWARDED_HOST: &str = "x-forwarded-host";
const FORWARDED_URI: &str = "x-forwarded-uri";

/// `GET /v1/auth/forward[?role=R]`: forward authentication for reverse proxies.
///
/// Answers with headers only, never a body: 200 lets the request through,
/// 401 and 403 refuse it, and a 302 sends a browser to sign in and come
/// back (only from a trusted proxy, for an `Accept` naming `text/html`,
/// and for an original URL on a host of `forward_auth.allowed_hosts`).
#[utoipa::path(
    get,
    path = "/v1/auth/forward",
    tag = "verifiers",
    params(
        ("role" = Option<Vec<String>>, Query, explode = true, description = "A role the user must hold (may repeat: every one is required)"),
        ("X-Forwarded-Proto" = Option<String>, Header, description = "The original request's scheme (Traefik, Caddy)"),
        ("X-Forwarded-Host" = Option<String>, Header, description = "The original request's host"),
        ("X-Forwarded-Uri" = Option<String>, Header, description = "The original request's path and query"),
        ("X-Original-URL" = Option<String>, Header, description = "The original URL, absolute (nginx `auth_request`) or a path"),
        ("Accept" = Option<String>, Header, description = "A browser's, naming `text/html`, may be redirected to sign in"),
    ),
    security(("session_cookie" = []), ("bearer" = []), ()),
    responses(
        (status = 200, description = "Signed in (and holding every role asked for): let the request through",
            headers(
                ("X-Tessera-User-Id" = String, description = "The user's id (a UUID, the tokens' `sub`)"),
                ("X-Tessera-Username" = String, description = "The username as the user wrote it"),
                ("X-Tessera-Roles" = String, description = "The user's roles, comma-separated; present and empty when none"),
                ("X-Tessera-Session-Id" = String, description = "The session's public id"),
            )),
        (status = 302, description = "Not signed in, a browser on an allowed host: sign in and come back",
            headers(("Location" = String, description = "`<public_url>/login?return_to=<original URL>`"))),
        (status = 401, description = "Not signed in (no body)"),
        (status = 403, description = "Signed in without a role asked for (no body)"),
        (status = 500, description = "The server failed (no body)"),
        (status = 503, description = "The store cannot be reached (no body)",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn forward(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let mut response = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(caller) => allowed(&caller, parts.uri.query()),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => refused(&state, &parts),
        Err(e) => failed(&e),
    };
    response.extensions_mut().insert(ForOtherHosts);
    response
}

/// 200 with the identity headers, or 403 when a role asked for is missing.
fn allowed(caller: &Caller, query: Option<&str>) -> Response {
    let user = caller.auth.user.as_ref();
    if !holds_roles(user, query) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = user.id.hyphenated().encode_lower(&mut id);
    let roles = match user.roles.as_slice() {
        [] => Ok(HeaderValue::from_static("")),
        [one] => HeaderValue::from_str(one),
        many => HeaderValue::from_str(&many.join(",")),
    };
    let values = (
        HeaderValue::from_str(id),
        HeaderValue::from_str(user.username.display()),
        roles,
        HeaderValue::from_str(caller.auth.session().id.as_str()),
    );
    let (Ok(id), Ok(username), Ok(roles), Ok(session)) = values else {
        tracing::error!(user = %user.id, "forward auth: a user field is not a header value");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        StatusCode::OK,
        [
            (USER_ID, id),
            (USERNAME, username),
            (ROLES, roles),
            (SESSION_ID, session),
        ],
    )
        .into_response()
}

/// Whether `user` holds every role the query asks for (`role=` may repeat).
fn holds_roles(user: &User, query: Option<&str>) -> bool {
    let Some(query) = query else {
        return true;
    };
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("role="))
        .all(|wanted| {
            if wanted.contains('%') {
                percent_decode(wanted).is_some_and(|wanted| user.has_role(&wanted))
            } else {
                user.has_role(wanted)
            }
        })
}

/// Not signed in: 302 to the sign-in page when a browser can be sent
/// there and back, else 401.
fn refused(state: &AppState, parts: &Parts) -> Response {
    match login_redirect(state, parts) {
        Some(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// A failure other than "not signed in" (a store down, ...): its status
/// alone, which every proxy reads as "do not pass".
fn failed(error: &ApiError) -> Response {
    let mut response = error.status().into_response();
    if let Some(seconds) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// `<public_url>/login?return_to=<original URL>`, when the request comes
/// from a trusted proxy, for a browser asking for HTML, and the original
/// URL is on an allowed host. The forwarding headers are believed only from
/// a trusted proxy: from anyone else they could aim the redirect anywhere
/// the list allows, which is harmless, but they would also be the client's
/// word on where it came from.
fn login_redirect(state: &AppState, parts: &Parts) -> Option<HeaderValue> {
    let config = state.forward_auth();
    let login = config.login_url.as_deref()?;
    if config.allowed_hosts.is_empty() {
        return None;
    }
    let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    if !state.http().trusted_proxies.contains(&peer.ip()) || !wants_html(&parts.headers) {
        return None;
    }
    let original = original_url(&parts.headers)?;
    if !config.allowed_hosts.allows_url(&original) {
        return None;
    }
    HeaderValue::from_str(&format!("{login}?return_to={}", query_escape(&original))).ok()
}

/// Whether `Accept` names `text/html` (not at `q=0`): a browser navigating.
/// `*/*` alone does not count: API clients send it too.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut params = range.split(';');
            let media = params.next().unwrap_or_default().trim();
            media.eq_ignore_ascii_case("text/html") && !params.any(refuses)
        })
}

/// Whether a media-range parameter is `q=0` (that type is not acceptable).
fn refuses(param: &str) -> bool {
    param.split_once('=').is_some_and(|(name, value)| {
        name.trim().eq_ignore_ascii_case("q") && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
    })
}

/// A header sent more than once: the proxy and the client disagree, or
/// proxies were chained; either way not one original request.
struct Ambiguous;

/// The one value of `name`: absent, or readable and not over-long.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Ambiguous> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() || value.len() > MAX_URL_CHARS {
        return Err(Ambiguous);
    }
    value.to_str().map(Some).map_err(|_| Ambiguous)
}

/// The URL the browser asked the proxy for: `X-Original-URL` when absolute,
/// else `X-Forwarded-Proto` `://` `X-Forwarded-Host` and `X-Forwarded-Uri`
/// (or a path-only `X-Original-URL`, or `/`). Not yet checked: see
/// [`crate::allowed_hosts::AllowedHosts::allows_url`].
pub fn original_url(headers: &HeaderMap) -> Option<String> {
    let original = single(headers, ORIGINAL_URL).ok()?;
    let proto = single(headers, FORWARDED_PROTO).ok()?;
    let host = single(headers, FORWARDED_HOST).ok()?;
    let uri = single(headers, FORWARDED_URI).ok()?;
    if let Some(url) = original.filter(|u| u.contains("://")) {
        return Some(url.to_owned());
    }
    let uri = uri.or(original).unwrap_or("/");
    if !uri.starts_with('/') {
        return None;
    }
    Some(format!("{}://{}{uri}", proto?, host?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn html_must_be_named() {
        for yes in [
            "text/html",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "application/json, TEXT/HTML;q=0.5",
            " text/html ; charset=utf-8",
        ] {
            assert!(wants_html(&headers(&[("accept", yes)])), "{yes}");
        }
        for no in [
            "*/*",
            "text/*",
            "application/json",
            "text/html;q=0",
            "text/html; q=0.0, */*",
            "text/htmlx",
            "",
        ] {
            assert!(!wants_html(&headers(&[("accept", no)])), "{no}");
        }
        assert!(!wants_html(&HeaderMap::new()));
        assert!(wants_html(&headers(&[
            ("accept", "*/*"),
            ("accept", "text/html")
        ])));
    }

    #[test]
    fn the_original_url_from_either_convention() {
        let url = |pairs: &[(&'static str, &'static str)]| original_url(&headers(pairs));
        assert_eq!(
            url(&[("x-original-url", "https://app.test/x?y=1")]).as_deref(),
            Some("https://app.test/x?y=1")
        );
        assert_eq!(
            url(&[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "app.test:8443"),
                ("x-forwarded-uri", "/x?y=1"),
            ])
            .as_deref(),
            Some("https://app.test:8443/x?y=1")
        );
        assert_eq!(
            url(&[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "app.test"),
            ])
            .as_deref(),
            Some("https://app.test/")
        );
        assert_eq!(
            url(&[
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "app.test"),
                ("x-original-url", "/p"),
            ])
            .as_deref(),
            Some("http://app.test/p")
        );
        // Missing parts, a URI that is no path, a repeated header.
        assert_eq!(url(&[("x-forwarded-host", "app.test")]), None);
        assert_eq!(url(&[("x-forwarded-proto", "https")]), None);
        assert_eq!(
            url(&[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "app.test"),
                ("x-forwarded-uri", "@evil.test/"),
            ]),
            None
        );
        assert_eq!(
            url(&[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "app.test"),
                ("x-forwarded-host", "evil.test"),
            ]),
            None
        );
        assert_eq!(
            url(&[
                ("x-original-url", "https://app.test/"),
                ("x-original-url", "https://evil.test/"),
            ]),
            None
        );
        assert_eq!(url(&[]), None);
    }
}
