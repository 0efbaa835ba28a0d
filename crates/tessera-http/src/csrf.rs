//! Cross-site request forgery defence for cookie-authenticated requests:
//! the request must not come from a foreign origin (`Origin`, else
//! `Sec-Fetch-Site`), and must carry the session's CSRF token in
//! `X-CSRF-Token` or a `csrf_token` form field.

use http::{HeaderMap, Method, header};
use tessera_core::secret::constant_time_str_eq;

use crate::middleware::host::HostPolicy;
use crate::problem::{ApiError, ProblemKind};

/// Header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// Origins allowed to send state-changing requests, and the host names the
/// server answers to.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// The origin of `public_url`, if configured.
    pub public_origin: Option<String>,
    /// Further allowed origins (`allowed_origins`), normalised.
    pub allowed: Vec<String>,
    /// The names this server answers to (none without `public_url`: any).
    pub hosts: Option<HostPolicy>,
}

impl OriginPolicy {
    /// Builds a policy from `public_url` and `allowed_origins`; `None` if an
    /// entry is not an origin.
    pub fn new(public_url: Option<&str>, allowed: &[String]) -> Result<Self, String> {
        let public_origin = public_url
            .map(|u| origin_of(u).ok_or_else(|| format!("`{u}` is not an http(s) URL")))
            .transpose()?;
        let allowed = allowed
            .iter()
            .map(|o| origin_of(o).ok_or_else(|| format!("`{o}` is not an http(s) origin")))
            .collect::<Result<_, _>>()?;
        let hosts = public_url.map(|u| HostPolicy::new(u, &[])).transpose()?;
        Ok(Self {
            public_origin,
            allowed,
            hosts,
        })
    }

    /// The same policy, answering also to `hosts` (`host` or `host:port`).
    pub fn with_hosts(mut self, hosts: &[String]) -> Result<Self, String> {
        if let Some(public) = &self.public_origin {
            self.hosts = Some(HostPolicy::new(public, hosts)?);
        }
        Ok(self)
    }

    /// Whether `origin` (an `Origin` header value) may act on this server:
    /// `public_url`'s, one of `allowed_origins`, or a page of this server
    /// under another of its names. Never decided by the request's own
    /// `Host`, which under DNS rebinding is the attacker's.
    pub fn allows(&self, origin: &str) -> bool {
        let Some(origin) = origin_of(origin) else {
            return false;
        };
        self.public_origin.as_deref() == Some(origin.as_str())
            || self.allowed.contains(&origin)
            || self
                .hosts
                .as_ref()
                .is_some_and(|hosts| hosts.accepts_origin(&origin))
    }

    /// Refuses requests that a browser marks as coming from elsewhere.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("null");
            return if self.allows(origin) {
                Ok(())
            } else {
                Err(ApiError::new(
                    ProblemKind::ForeignOrigin,
                    "the request comes from an origin that is not allowed",
                ))
            };
        }
        // No Origin: only a browser's Fetch metadata can tell us more. Browsers
        // that send it also send Origin on unsafe requests, so a site-crossing
        // value here is refused outright.
        match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some("cross-site" | "same-site") => Err(ApiError::new(
                ProblemKind::ForeignOrigin,
                "the request comes from another site",
            )),
            _ => Ok(()),
        }
    }
}

/// Normalises an http(s) URL to its origin: lower-case scheme and host,
/// default port dropped, no path.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.chars().any(char::is_whitespace)
    {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = if let Some(literal) = authority.strip_prefix('[') {
        let (address, after) = literal.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{address}]"), port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.clone(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Whether a method can change state (everything but GET, HEAD, OPTIONS).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Checks the request's CSRF token (header first, then form field) against
/// the session's, in constant time.
pub fn check_token(
    expected: &str,
    headers: &HeaderMap,
    form_token: Option<&str>,
) -> Result<(), ApiError> {
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(form_token);
    match given {
        Some(given) if constant_time_str_eq(given, expected) => Ok(()),
        Some(_) => Err(ApiError::new(
            ProblemKind::CsrfTokenInvalid,
            "the CSRF token is wrong",
        )),
        None => Err(ApiError::new(
            ProblemKind::CsrfTokenMissing,
            "send the session's CSRF token in X-CSRF-Token or a csrf_token form field",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn origins_normalise() {
        assert_eq!(
            origin_of("https://Auth.Example.com/x?y").as_deref(),
            Some("https://auth.example.com")
        );
        assert_eq!(
            origin_of("https://a.example:443").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            origin_of("http://a.example:8080").as_deref(),
            Some("http://a.example:8080")
        );
        assert_eq!(
            origin_of("http://[::1]:8080").as_deref(),
            Some("http://[::1]:8080")
        );
        assert_eq!(origin_of("http://[::1]").as_deref(), Some("http://[::1]"));
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("javascript://x"), None);
        assert_eq!(origin_of("http://user@evil"), None);
        assert_eq!(origin_of("http://"), None);
    }

    #[test]
    fn origin_policy_checks_public_allowed_and_own_hosts() -> Result<(), String> {
        let policy = OriginPolicy::new(
            Some("https://auth.example.com"),
            &["https://app.example.com".to_owned()],
        )?;
        assert!(policy.allows("https://auth.example.com"));
        assert!(policy.allows("https://app.example.com"));
        assert!(!policy.allows("https://evil.example.com"));
        assert!(!policy.allows("null"));
        // The request's Host vouches for nothing (DNS rebinding).
        assert!(!policy.allows("http://127.0.0.1:8080"));
        let local = OriginPolicy::new(Some("http://127.0.0.1:8080"), &[])?;
        assert!(local.allows("http://localhost:8080"));
        assert!(!local.allows("http://evil.example:8080"));
        let named = policy.with_hosts(&["auth.internal".to_owned()])?;
        assert!(named.allows("https://auth.internal"));
        assert!(!named.allows("http://auth.internal"));
        Ok(())
    }

    #[test]
    fn fetch_metadata_is_used_without_origin() {
        let policy = OriginPolicy::default();
        let mut h = HeaderMap::new();
        assert!(policy.check(&h).is_ok());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(policy.check(&h).is_ok());
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(policy.check(&h).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(policy.check(&h).is_err());
    }

    #[test]
    fn tokens_compare_exactly() {
        let mut h = HeaderMap::new();
        assert!(check_token("abc", &h, None).is_err());
        assert!(check_token("abc", &h, Some("abc")).is_ok());
        h.insert(CSRF_HEADER, HeaderValue::from_static("abd"));
        assert!(check_token("abc", &h, Some("abc")).is_err());
        h.insert(CSRF_HEADER, HeaderValue::from_static("abc"));
        assert!(check_token("abc", &h, None).is_ok());
    }
}
