//! The names this server answers to. A request whose `Host` is not
//! `public_url`'s host (or one listed in `hosts`) is refused before any
//! handler runs: under DNS rebinding a hostile page reaches the server
//! under the attacker's own name, so the browser treats the server as the
//! attacker's origin, sends whatever it likes and reads every answer. Only
//! the name decides, as the network position cannot.
//!
//! Loopback names (`localhost`, `127.0.0.0/8`, `[::1]`) are accepted on any
//! port when `public_url` is itself on loopback: no rebinding attack can
//! make a browser send them for another site.

use std::net::IpAddr;

use http::header;

use crate::csrf::origin_of;
use crate::problem::{ApiError, ProblemKind};

/// The accepted host names (ports play no part in `Host`: a rebinding
/// attack is told apart by its name), and the origins of this server's own
/// pages (where ports do: another port is another origin).
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// `public_url`'s authority as a `Host` header carries it (the name,
    /// and the port unless it is the scheme's own), once found acceptable:
    /// nearly every request's, so it is matched before anything is parsed.
    public_authority: Option<String>,
    /// Lower-case host names, IPv6 addresses in brackets.
    names: Vec<String>,
    /// Any loopback name (a loopback `public_url`).
    loopback: bool,
    /// Normalised origins of the server under each of its names: in
    /// `public_url`'s scheme, on its port or on the one a `hosts` entry names.
    origins: Vec<String>,
}

impl HostPolicy {
    /// The host of `public_url` plus `extra` (names, optionally with a port,
    /// which is ignored).
    pub fn new(public_url: &str, extra: &[String]) -> Result<Self, String> {
        let public =
            origin_of(public_url).ok_or_else(|| format!("`{public_url}` is not an http(s) URL"))?;
        let scheme = if public.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        let public_name = host_of_origin(&public).to_owned();
        // The public port, as written after the name (empty for the default).
        let port = public
            .get(scheme.len() + 3 + public_name.len()..)
            .unwrap_or_default();
        let loopback = is_loopback(&public_name);
        let mut names = vec![public_name];
        let mut origins = vec![public.clone()];
        if loopback {
            for alias in ["localhost", "127.0.0.1", "[::1]"] {
                origins.push(format!("{scheme}://{alias}{port}"));
            }
        }
        for host in extra {
            let origin = (!host.contains(['/', '?', '#']))
                .then(|| origin_of(&format!("{scheme}://{host}")))
                .flatten()
                .ok_or_else(|| format!("`{host}` is not a host name"))?;
            let name = host_of_origin(&origin).to_owned();
            if split_port(host) == Some(host.as_str()) {
                // No port given: the name on the public port.
                origins.push(format!("{scheme}://{name}{port}"));
            } else {
                origins.push(origin.clone());
            }
            names.push(name);
        }
        let mut policy = Self {
            public_authority: None,
            names,
            loopback,
            origins,
        };
        let authority = public.get(scheme.len() + 3..).unwrap_or_default();
        if policy.accepts_host(authority) {
            policy.public_authority = Some(authority.to_owned());
        }
        Ok(policy)
    }

    /// Whether a request for `host` (a `Host` header value) is ours. No
    /// allocation: this runs on every request.
    pub fn accepts_host(&self, host: &str) -> bool {
        self.public_authority.as_deref() == Some(host)
            || split_port(host).is_some_and(|name| self.accepts_name(name))
    }

    /// Whether `origin` (normalised) is a page of this server: what a page
    /// it served sends as its `Origin`.
    pub fn accepts_origin(&self, origin: &str) -> bool {
        self.origins.iter().any(|ours| ours == origin)
    }

    fn accepts_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
            || (self.loopback && is_loopback(name))
    }
}

/// The host of a normalised origin (`https://[::1]:8080` → `[::1]`).
fn host_of_origin(origin: &str) -> &str {
    origin
        .split_once("://")
        .and_then(|(_, authority)| split_port(authority))
        .unwrap_or_default()
}

/// The name of an authority (`host`, `host:port`, `[v6]:port`), if it is
/// one: no user info, path, space or empty name, and a port of digits.
fn split_port(authority: &str) -> Option<&str> {
    let (name, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (address, after) = rest.split_once(']')?;
            let name = authority.get(..address.len() + 2)?;
            let port = match after {
                "" => "",
                port => port.strip_prefix(':')?,
            };
            (name, port)
        }
        None => match authority.split_once(':') {
            Some((name, port)) => (name, port),
            None => (authority, ""),
        },
    };
    let port_ok = port.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(':');
    let name_ok = !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
    (port_ok && name_ok).then_some(name)
}

/// Whether a host name names this machine.
fn is_loopback(name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses requests for other hosts, except on the paths given (health
/// checks, which load balancers send to an address, not a name).
#[derive(Debug)]
pub struct HostCheck {
    policy: Option<HostPolicy>,
    exempt: &'static [&'static str],
}

impl HostCheck {
    /// Checks against `policy` (none: every host is accepted), except on `exempt` paths.
    pub fn new(policy: Option<HostPolicy>, exempt: &'static [&'static str]) -> Self {
        Self { policy, exempt }
    }

    /// Why `request` is refused, if it is.
    pub fn refusal<B>(&self, request: &http::Request<B>) -> Option<ApiError> {
        let policy = self.policy.as_ref()?;
        if self.exempt.contains(&request.uri().path()) {
            return None;
        }
        // An absolute-form request line names its host too: both must be ours.
        let named = request.uri().authority().map(|a| a.as_str());
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let ok = match (host, named) {
            (Some(host), Some(named)) => policy.accepts_host(host) && policy.accepts_host(named),
            (Some(host), None) | (None, Some(host)) => policy.accepts_host(host),
            (None, None) => {
                return Some(ApiError::bad_request("the request has no Host header"));
            }
        };
        (!ok).then(|| {
            ApiError::new(
                ProblemKind::UnknownHost,
                "this server does not answer for that host name (see public_url and hosts)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_public_host_and_listed_ones() -> Result<(), String> {
        let policy = HostPolicy::new(
            "https://auth.example.com",
            &["auth.internal:8443".to_owned(), "[2001:db8::1]".to_owned()],
        )?;
        assert!(policy.accepts_host("auth.example.com"));
        assert!(policy.accepts_host("auth.example.com:443"));
        assert!(policy.accepts_host("auth.example.com:8443"));
        assert!(policy.accepts_host("AUTH.Example.com"));
        assert!(policy.accepts_host("auth.internal"));
        assert!(policy.accepts_host("[2001:db8::1]:8080"));
        assert!(!policy.accepts_host("evil.example"));
        assert!(!policy.accepts_host("auth.example.com.evil.example"));
        assert!(!policy.accepts_host("127.0.0.1"));
        assert!(!policy.accepts_host("localhost:8080"));
        assert!(!policy.accepts_host("auth.example.com@evil"));
        assert!(!policy.accepts_host("evil@auth.example.com"));
        assert!(!policy.accepts_host("auth.example.com/x"));
        assert!(!policy.accepts_host("auth.example.com:"));
        assert!(!policy.accepts_host("auth.example.com:80x"));
        assert!(!policy.accepts_host("auth.example.com "));
        assert!(!policy.accepts_host(""));
        assert!(!policy.accepts_host("[2001:db8::1"));
        assert!(policy.accepts_origin("https://auth.example.com"));
        assert!(policy.accepts_origin("https://auth.internal:8443"));
        assert!(!policy.accepts_origin("https://auth.internal"));
        assert!(policy.accepts_origin("https://[2001:db8::1]"));
        assert!(!policy.accepts_origin("https://auth.example.com:8443"));
        assert!(!policy.accepts_origin("http://auth.example.com"));
        assert!(!policy.accepts_origin("http://localhost:8080"));
        assert!(HostPolicy::new("https://a.example", &["x/y".to_owned()]).is_err());
        assert!(HostPolicy::new("https://a.example", &["a@b".to_owned()]).is_err());
        Ok(())
    }

    #[test]
    fn a_loopback_server_answers_to_every_loopback_name() -> Result<(), String> {
        let policy = HostPolicy::new("http://127.0.0.1:8080", &[])?;
        assert!(policy.accepts_host("127.0.0.1:8080"));
        assert!(policy.accepts_host("localhost:8080"));
        assert!(policy.accepts_host("LOCALHOST:9999"));
        assert!(policy.accepts_host("[::1]:8080"));
        assert!(policy.accepts_host("127.0.0.2"));
        assert!(!policy.accepts_host("evil.example:8080"));
        assert!(!policy.accepts_host("localhost.evil.example:8080"));
        assert!(!policy.accepts_host("127.0.0.1.evil.example:8080"));
        assert!(policy.accepts_origin("http://localhost:8080"));
        assert!(policy.accepts_origin("http://[::1]:8080"));
        assert!(!policy.accepts_origin("http://localhost:8081"));
        assert!(!policy.accepts_origin("http://127.0.0.1:1"));
        assert!(!policy.accepts_origin("https://localhost:8080"));
        assert!(!policy.accepts_origin("http://evil.example:8080"));
        Ok(())
    }
}
