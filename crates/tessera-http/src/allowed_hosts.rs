//! Hosts besides this server that a browser may be sent to after signing
//! in (`forward_auth.allowed_hosts`): the applications behind forward
//! authentication. An absolute URL passes only with an `http(s)` scheme, no
//! user info, and a host equal to a listed one (any port): no open redirect.
//!
//! The URL is read the way a browser reads it, and anything a browser could
//! read differently from this check (backslashes, escapes or white space in
//! the authority, non-ASCII look-alikes) is refused rather than interpreted.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest absolute URL considered.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest DNS name (RFC 1035).
const MAX_NAME_CHARS: usize = 253;
/// Longest DNS label (RFC 1035).
const MAX_LABEL_CHARS: usize = 63;

/// The listed hosts, lower-case (IPv6 addresses in brackets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    hosts: Vec<String>,
}

impl AllowedHosts {
    /// Validates the entries: each a DNS name, an IPv4 address or a
    /// bracketed IPv6 address, without a port (every port is allowed).
    pub fn new(entries: &[String]) -> Result<Self, String> {
        let hosts = entries
            .iter()
            .map(|entry| {
                if split_authority(entry).is_some_and(|(_, port)| port.is_some()) {
                    return Err(format!(
                        "`{entry}`: give the host without a port (every port is allowed)"
                    ));
                }
                host(entry).ok_or_else(|| {
                    format!("`{entry}` is not a host name, IPv4 address or [IPv6] address")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { hosts })
    }

    /// No host listed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Whether `host` (a bare host, no port) is listed, ignoring ASCII case
    /// as DNS does.
    pub fn contains(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether `url` is an absolute `http(s)` URL on a listed host that is
    /// safe to put in a `Location` header as is.
    pub fn allows_url(&self, url: &str) -> bool {
        !self.is_empty() && url_host(url).is_some_and(|(host, _)| self.contains(host))
    }
}

/// The host and port of an absolute `http(s)` URL, if it is one a browser
/// reads exactly as written: visible ASCII only, no backslash, an authority
/// without user info or escapes.
pub fn url_host(url: &str) -> Option<(&str, Option<u16>)> {
    if url.len() > MAX_URL_CHARS || !url.bytes().all(|b| b.is_ascii_graphic()) || url.contains('\\')
    {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    if authority.contains(['@', '%']) {
        return None;
    }
    let (name, port) = split_authority(authority)?;
    host(name)?;
    Some((name, port))
}

/// `host` or `host:port` (`[v6]:port`); a port of 1 to 5 digits below 65536.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let name = authority.get(..=close)?;
        match authority.get(close + 1..)? {
            "" => (name, None),
            after => (name, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    Some((name, port))
}

/// `raw` lower-cased, if it is a DNS name (LDH labels, no trailing dot, a
/// last label that is not all digits, which browsers would read as an
/// IPv4 address), an IPv4 address, or an IPv6 address in brackets.
pub fn host(raw: &str) -> Option<String> {
    if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        inner.parse::<Ipv6Addr>().ok()?;
        return Some(raw.to_ascii_lowercase());
    }
    if raw.parse::<Ipv4Addr>().is_ok() {
        return Some(raw.to_owned());
    }
    dns_name(raw)
}

/// `raw` lower-cased, if it is a DNS host name as [`host`] describes.
pub fn dns_name(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_NAME_CHARS {
        return None;
    }
    let labels_ok = raw.split('.').all(|label| {
        (1..=MAX_LABEL_CHARS).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    let last = raw.rsplit('.').next().unwrap_or_default();
    (labels_ok && !last.bytes().all(|b| b.is_ascii_digit())).then(|| raw.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> AllowedHosts {
        AllowedHosts::new(&[
            "allowed.test".to_owned(),
            "App.Example.test".to_owned(),
            "127.0.0.1".to_owned(),
            "[::1]".to_owned(),
        ])
        .unwrap_or_default()
    }

    #[test]
    fn entries_are_checked() {
        assert_eq!(allowed().hosts.len(), 4);
        assert!(allowed().contains("app.example.test"));
        for bad in [
            "",
            "allowed.test:8080",
            "https://allowed.test",
            "allowed.test/",
            "allowed.test.",
            ".allowed.test",
            "allowed..test",
            "-allowed.test",
            "user@allowed.test",
            "allowed test",
            "allowed_test",
            "1.2.3",
            "[::1",
            "[nonsense]",
            "*.allowed.test",
            "allowéd.test",
        ] {
            assert!(
                AllowedHosts::new(&[bad.to_owned()]).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn urls_on_listed_hosts_pass() {
        let hosts = allowed();
        for good in [
            "https://allowed.test",
            "https://allowed.test/",
            "http://allowed.test/app?x=1&y=%2F#top",
            "https://allowed.test:8443/x",
            "HTTPS://ALLOWED.TEST/x",
            "https://app.example.test/",
            "http://127.0.0.1:8080/x",
            "http://[::1]:8080/x",
            "https://allowed.test?x",
            "https://allowed.test#x",
        ] {
            assert!(hosts.allows_url(good), "{good:?} was refused");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let hosts = allowed();
        for nasty in [
            "https://allowed.test.evil.com",
            "https://allowed.test.evil.com/",
            "https://evil.com\\@allowed.test",
            "https://evil.com\\allowed.test",
            "https://allowed.test\\@evil.com",
            "https://allowed.test@evil.com",
            "https://user:pass@allowed.test/",
            "https://allowed.test:443@evil.com",
            "https://allowed.test%40evil.com",
            "https://allowed.test%2eevil.com",
            "https://evil.com%5C@allowed.test",
            "https://%61llowed.test/",
            "https%3A%2F%2Fallowed.test",
            "https://allowed.test./",
            "https://allowed.test../",
            "https://.allowed.test/",
            "https://evil.com#@allowed.test",
            "https://evil.com?@allowed.test",
            "https://evil.com/https://allowed.test",
            "https://evil.com/allowed.test",
            "https:///allowed.test",
            "https:/allowed.test",
            "https:allowed.test",
            "//allowed.test",
            "ftp://allowed.test/",
            "javascript://allowed.test/%0Aalert(1)",
            "data://allowed.test",
            " https://allowed.test",
            "https://allowed.test /",
            "https://allowed.test\t/",
            "https://allo\twed.test/",
            "https://allowed.test\r\nSet-Cookie: x=y",
            "https://allowed.tеst/",
            "https://allowed.test:/",
            "https://allowed.test:99999/",
            "https://allowed.test:8080:80/",
            "https://allowed.test:80x/",
            "https://[::1/",
            "https://[::2]/",
            "https://127.0.0.1.evil.com/",
            "https://0x7f.0.0.1/",
            "https://evil.com",
            "https://",
            "",
        ] {
            assert!(!hosts.allows_url(nasty), "{nasty:?} was accepted");
        }
        let long = format!("https://allowed.test/{}", "a".repeat(MAX_URL_CHARS));
        assert!(!hosts.allows_url(&long));
        assert!(!AllowedHosts::default().allows_url("https://allowed.test/"));
    }
}
