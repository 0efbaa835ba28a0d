//! The session cookie: reading it from hostile `Cookie` headers and writing
//! `Set-Cookie` with the strictest attributes the deployment allows.

use http::{HeaderMap, HeaderValue, header};

use crate::allowed_hosts::{dns_name, url_host};
use tessera_core::secret::{Secret, SecretKind};
use time::Duration;

/// Longest `Cookie` header we look into; anything longer is ignored whole.
const MAX_COOKIE_HEADER_BYTES: usize = 8 * 1024;

/// `SameSite` attribute values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites, not on their subrequests.
    Lax,
    /// Never sent from other sites.
    Strict,
    /// Always sent (requires `Secure`).
    None,
}

impl SameSite {
    /// The attribute's value as `Set-Cookie` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// How the session cookie is written.
#[derive(Debug, Clone)]
pub struct CookieConfig {
    /// Name as configured; the `__Host-` prefix is dropped when not secure.
    pub name: String,
    /// Send with `Secure` (false only for plain-HTTP development).
    pub secure: bool,
    /// `SameSite` attribute.
    pub same_site: SameSite,
    /// Parent domain the cookie covers (`Domain=`), so that sibling hosts
    /// behind forward authentication see it; `None`: this host only.
    pub domain: Option<String>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "__Host-tessera".into(),
            secure: true,
            same_site: SameSite::Lax,
            domain: None,
        }
    }
}

impl CookieConfig {
    /// The same cookie for `domain` and its subdomains. Browsers refuse
    /// `__Host-` cookies with `Domain`, so that prefix becomes `__Secure-`.
    pub fn with_domain(mut self, domain: String) -> Self {
        if let Some(rest) = self.name.strip_prefix("__Host-") {
            self.name = format!("__Secure-{rest}");
        }
        self.domain = Some(domain);
        self
    }

    /// `raw` lower-cased, if it can be the cookie domain of a server at
    /// `public_url`: a DNS name of two labels or more (browsers refuse a
    /// cookie for a whole top-level domain) that holds `public_url`'s host.
    pub fn check_domain(raw: &str, public_url: &str) -> Result<String, String> {
        let domain = dns_name(raw)
            .filter(|d| d.contains('.'))
            .ok_or_else(|| {
                format!(
                    "`{raw}` is not a parent domain such as example.com (a DNS name of two labels or more, no leading or trailing dot, no IP address)"
                )
            })?;
        let host = url_host(public_url)
            .map(|(host, _)| host.to_ascii_lowercase())
            .ok_or_else(|| format!("public_url `{public_url}` has no host name"))?;
        let inside = host
            .strip_suffix(domain.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'));
        if inside {
            Ok(domain)
        } else {
            Err(format!(
                "public_url's host `{host}` is not `{domain}` or a subdomain of it: the browser would refuse the cookie"
            ))
        }
    }

    /// The name actually used: browsers refuse `__Host-` cookies without
    /// `Secure`, so the prefix goes when `secure` is off; and with a domain
    /// (see [`Self::with_domain`], which renames it to `__Secure-`).
    pub fn effective_name(&self) -> &str {
        if !self.secure {
            self.name
                .strip_prefix("__Host-")
                .or_else(|| self.name.strip_prefix("__Secure-"))
                .unwrap_or(&self.name)
        } else if self.domain.is_some() {
            self.name.strip_prefix("__Host-").unwrap_or(&self.name)
        } else {
            &self.name
        }
    }

    /// Every well-formed session secret among the request's cookies of our
    /// name. Garbage, over-long and non-ASCII values are skipped: they can
    /// only lead to "not signed in", never to an error.
    /// Lazily: the first is usually the one, and the caller stops there.
    pub fn session_secrets<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> impl Iterator<Item = Secret> + Send + 'a {
        let name = self.effective_name().as_bytes();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter(|v| v.len() <= MAX_COOKIE_HEADER_BYTES)
            .flat_map(|v| pairs(v.as_bytes()))
            .filter_map(move |pair| {
                let eq = memchr::memchr(b'=', pair)?;
                let (key, value) = pair.split_at(eq);
                let value = value.get(1..)?;
                (key.trim_ascii() == name).then(|| unquote(value.trim_ascii()))
            })
            .filter_map(|v| Secret::parse_bytes(SecretKind::Session, v))
    }

    /// The `Set-Cookie` value that stores `secret` for `max_age`.
    pub fn set(&self, secret: &Secret, max_age: Duration) -> Option<HeaderValue> {
        let seconds = max_age.whole_seconds().max(0);
        self.header(&secret.expose(), seconds)
    }

    /// The `Set-Cookie` value that deletes the cookie.
    pub fn clear(&self) -> Option<HeaderValue> {
        self.header("", 0)
    }

    fn header(&self, value: &str, max_age: i64) -> Option<HeaderValue> {
        let mut cookie = format!(
            "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite={}",
            self.effective_name(),
            value,
            max_age,
            self.same_site.as_str()
        );
        if let Some(domain) = &self.domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        HeaderValue::from_str(&cookie).ok()
    }
}

/// The `name=value` pairs of a `Cookie` header, split at each `;` by a
/// vectorised search (every signed-in request's header is scanned).
fn pairs(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let all = rest?;
        match memchr::memchr(b';', all) {
            Some(at) => {
                rest = all.get(at + 1..);
                all.get(..at)
            }
            None => rest.take(),
        }
    })
}

/// A cookie value without the double quotes RFC 6265 allows around it.
fn unquote(mut value: &[u8]) -> &[u8] {
    while let [b'"', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b'"'] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn pairs_split_as_the_standard_split_does() {
        for header in ["", ";", "a", "a=1", "a=1;", ";a=1", "a=1; b=2;;c", ";;"] {
            let ours: Vec<&[u8]> = pairs(header.as_bytes()).collect();
            let std: Vec<&[u8]> = header.as_bytes().split(|b| *b == b';').collect();
            assert_eq!(ours, std, "{header:?}");
        }
    }

    #[test]
    fn finds_our_cookie_among_others_and_skips_garbage()
    -> Result<(), tessera_core::secret::RandomError> {
        let config = CookieConfig::default();
        let secret = Secret::generate(SecretKind::Session)?;
        let line = format!(
            "a=b; __Host-tessera=garbage; __Host-tessera={}; c=d",
            secret.expose()
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&line).map_err(|_| tessera_core::secret::RandomError)?,
        );
        let found: Vec<_> = config.session_secrets(&h).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found.first().map(Secret::hash), Some(secret.hash()));
        assert!(
            config
                .session_secrets(&headers(&["__Host-tessera=ts_x"]))
                .next()
                .is_none()
        );
        assert!(
            config
                .session_secrets(&headers(&["tessera=ts_x; =; ;;"]))
                .next()
                .is_none()
        );
        Ok(())
    }

    #[test]
    fn reads_quoted_spaced_and_split_cookie_lines() -> Result<(), tessera_core::secret::RandomError>
    {
        let config = CookieConfig::default();
        let secret = Secret::generate(SecretKind::Session)?;
        let wire = secret.expose();
        let found = |lines: &[&[u8]]| {
            let mut h = HeaderMap::new();
            for line in lines {
                if let Ok(value) = HeaderValue::from_bytes(line) {
                    h.append(header::COOKIE, value);
                }
            }
            config
                .session_secrets(&h)
                .map(|s| s.hash())
                .collect::<Vec<_>>()
        };
        let quoted = format!("a=1;  __Host-tessera = \"{wire}\" ;b=2");
        assert_eq!(found(&[quoted.as_bytes()]), vec![secret.hash()]);
        // Another cookie's bytes outside ASCII do not hide ours.
        let mixed = [b"x=\xe9t\xe9; __Host-tessera=".as_slice(), wire.as_bytes()].concat();
        assert_eq!(found(&[&mixed]), vec![secret.hash()]);
        // On a second Cookie line, after a line of garbage.
        let second = format!("__Host-tessera={wire}");
        assert_eq!(
            found(&[b"__Host-tessera=ts_\xff\xff", second.as_bytes()]),
            vec![secret.hash()]
        );
        // Not our name, or our name as a prefix of another.
        let other = format!("__Host-tesserax={wire}; tessera={wire}");
        assert!(found(&[other.as_bytes()]).is_empty());
        Ok(())
    }

    #[test]
    fn secure_cookie_has_every_attribute() -> Result<(), tessera_core::secret::RandomError> {
        let secret = Secret::generate(SecretKind::Session)?;
        let value = CookieConfig::default().set(&secret, Duration::hours(12));
        let value = value
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        assert!(value.starts_with("__Host-tessera=ts_"));
        for attr in [
            "Path=/",
            "Max-Age=43200",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
        ] {
            assert!(value.contains(attr), "{value} lacks {attr}");
        }
        assert!(!value.contains("Domain"));
        Ok(())
    }

    #[test]
    fn a_domain_cookie_is_secure_not_host_prefixed() -> Result<(), String> {
        let config = CookieConfig::default().with_domain("example.test".into());
        assert_eq!(config.effective_name(), "__Secure-tessera");
        let value = config
            .clear()
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        assert!(value.starts_with("__Secure-tessera=;"), "{value}");
        assert!(value.contains("; Domain=example.test"), "{value}");
        assert!(value.contains("; Secure"), "{value}");
        let plain = CookieConfig {
            secure: false,
            ..CookieConfig::default()
        }
        .with_domain("example.test".into());
        assert_eq!(plain.effective_name(), "tessera");
        // Built by hand with a domain and the `__Host-` name: never sent
        // with a prefix the browser would refuse.
        let by_hand = CookieConfig {
            domain: Some("example.test".into()),
            ..CookieConfig::default()
        };
        assert_eq!(by_hand.effective_name(), "tessera");

        let public = "https://auth.example.test";
        assert_eq!(
            CookieConfig::check_domain("Example.Test", public)?,
            "example.test"
        );
        assert_eq!(
            CookieConfig::check_domain("auth.example.test", public)?,
            "auth.example.test"
        );
        for bad in [
            "",
            "test",
            ".example.test",
            "example.test.",
            "example..test",
            "xample.test",
            "le.test",
            "other.test",
            "auth.example.test.evil",
            "sub.auth.example.test",
            "127.0.0.1",
            "example.test:443",
            "example.test/",
            "exa mple.test",
            "*.example.test",
            "example.test; Secure",
        ] {
            assert!(
                CookieConfig::check_domain(bad, public).is_err(),
                "{bad:?} was accepted"
            );
        }
        assert!(CookieConfig::check_domain("example.test", "http://127.0.0.1:8080").is_err());
        Ok(())
    }

    #[test]
    fn insecure_cookie_drops_prefix_and_secure() {
        let config = CookieConfig {
            secure: false,
            ..CookieConfig::default()
        };
        let value = config
            .clear()
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        assert!(value.starts_with("tessera=;"));
        assert!(value.contains("Max-Age=0"));
        assert!(!value.contains("Secure"));
    }
}
