//! Who is calling: the client's address, and the user behind a session
//! cookie (with its CSRF defence) or a bearer token.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use http::{HeaderMap, header};
use secrecy::ExposeSecret as _;
use tessera_core::CoreError;
use tessera_core::authenticated::Authenticated;
use tessera_core::client::ClientInfo;
use tessera_core::secret::{Secret, constant_time_str_eq};
use tessera_core::user::ADMIN_ROLE;

use crate::csrf::{check_token, is_unsafe};
use crate::middleware::form_token::FormCsrfToken;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// The client's address and user agent.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let ip = peer.map(|peer| client_ip(peer, &parts.headers, &state.http().trusted_proxies));
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(Self(ClientInfo::new(ip, user_agent)))
    }
}

/// The client address: the peer, unless the peer is a trusted proxy, in
/// which case the right-most `X-Forwarded-For` hop that is not itself a
/// trusted proxy. Left-most entries are client-written and never believed.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            // A hop we cannot read ends the chain we can trust.
            Err(_) => return peer,
        }
    }
    peer
}

/// How the caller proved who they are.
#[derive(Debug)]
pub enum Carrier {
    /// A session cookie holding this secret.
    Cookie(Secret),
    /// A bearer access token.
    Bearer,
}

/// A signed-in caller. For cookie-authenticated unsafe requests the CSRF
/// checks have passed by the time a handler sees this.
#[derive(Debug)]
pub struct Caller {
    /// User and session.
    pub auth: Authenticated,
    /// Cookie or bearer.
    pub carrier: Carrier,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            // An Authorization header never falls back to the cookie, so a
            // request's credential is never ambiguous. Bearer requests carry
            // no ambient credential, hence need no CSRF defence.
            let token = bearer(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
            let auth = state.core().token_sessions.authenticate(token).await?;
            return Ok(Caller {
                auth,
                carrier: Carrier::Bearer,
            });
        }
        if let Some(caller) = cached_cookie_caller(parts, state) {
            return caller;
        }
        cookie_caller(parts, state).await
    }
}

/// [`cookie_caller`]'s answer when the request's first session cookie is
/// answered whole by the in-process caches (the usual signed-in request),
/// with no asynchronous step; `None`: ask [`cookie_caller`]. The same
/// answer: the first live session among the cookies is the one either way.
fn cached_cookie_caller(parts: &Parts, state: &AppState) -> Option<Result<Caller, ApiError>> {
    let secret = state.http().cookie.session_secrets(&parts.headers).next()?;
    let auth = state.core().cookie_sessions.authenticate_cached(&secret)?;
    Some(csrf_checked(parts, state, (auth, secret)))
}

/// A caller who may use and manage the signed-in account (`/v1/me*`): a
/// cookie session, a password-grant token, or a token of a first-party
/// client (registered with `skip_consent`). A token an application got
/// through the consent page is for that application's own use of the
/// identity (`/v1/userinfo`, resource servers): here it gets 403
/// `insufficient-scope`, so it can neither read the account nor list,
/// end or change what the user holds elsewhere.
#[derive(Debug)]
pub struct AccountCaller(pub Caller);

impl FromRequestParts<AppState> for AccountCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if let Some(client_id) = &caller.auth.client_id
            && !state.core().clients.is_first_party(client_id).await?
        {
            return Err(ApiError::new(
                ProblemKind::InsufficientScope,
                "tokens of this client are for its own use of the sign-in (/v1/userinfo), not for managing the account",
            ));
        }
        Ok(AccountCaller(caller))
    }
}

/// The caller by session cookie alone, whatever else the request carries:
/// for the endpoints that act on the cookie's session. Unsafe methods pass
/// the origin and CSRF checks first.
pub async fn cookie_caller(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let found = cookie_session(parts, state).await?;
    csrf_checked(parts, state, found)
}

/// The caller of a cookie session found on the request, once an unsafe
/// request has passed the origin and CSRF checks.
pub fn csrf_checked(
    parts: &Parts,
    state: &AppState,
    (auth, secret): (Authenticated, Secret),
) -> Result<Caller, ApiError> {
    if is_unsafe(&parts.method) {
        state.http().origins.check(&parts.headers)?;
        let expected = state.core().cookie_sessions.csrf_token(&secret);
        check_token(
            &expected,
            &parts.headers,
            parts
                .extensions
                .get::<FormCsrfToken>()
                .map(|t| t.0.as_str()),
        )?;
    }
    Ok(Caller {
        auth,
        carrier: Carrier::Cookie(secret),
    })
}

/// The live session behind the request's cookie, if any.
pub async fn cookie_session(
    parts: &Parts,
    state: &AppState,
) -> Result<(Authenticated, Secret), ApiError> {
    for secret in state.http().cookie.session_secrets(&parts.headers) {
        match state.core().cookie_sessions.authenticate(&secret).await {
            Ok(auth) => return Ok((auth, secret)),
            Err(CoreError::Unauthenticated) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::unauthenticated())
}

/// A caller allowed to use the administration API.
#[derive(Debug)]
pub enum Admin {
    /// The configured `admin_token`.
    Token,
    /// A signed-in user with the `admin` role.
    User(Box<Caller>),
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(expected) = &state.http().admin_token
            && let Some(given) = bearer(&parts.headers)
            && constant_time_str_eq(given, expected.expose_secret())
        {
            return Ok(Admin::Token);
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.auth.user.has_role(ADMIN_ROLE) {
            Ok(Admin::User(Box::new(caller)))
        } else {
            Err(ApiError::new(
                ProblemKind::NotAdmin,
                "this needs the admin role or the admin token",
            ))
        }
    }
}

/// The token of an `Authorization: Bearer` header, if well-formed.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 1.2.3.4, 10.0.0.2"),
        );
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &trusted), ip("9.9.9.9"));
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
