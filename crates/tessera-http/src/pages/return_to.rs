//! Where to send the browser after signing in (`return_to`): a path on
//! this server, or an absolute URL on a host of `forward_auth.allowed_hosts`
//! (see [`AllowedHosts`]). Anything a browser could read as another host
//! (`//evil`, `/\evil`, a scheme, control characters browsers strip, and the
//! same hidden behind percent-escapes) is refused, and the caller falls back
//! to the account page: no open redirect.

use crate::allowed_hosts::AllowedHosts;

/// Where a browser goes when `return_to` is absent or refused.
pub const DEFAULT: &str = "/account";
/// Longest `return_to` considered.
const MAX_CHARS: usize = 2048;
/// Percent-decoding rounds tried before giving up (each round may uncover
/// another layer of escapes).
const MAX_DECODE_ROUNDS: usize = 4;

/// A `return_to` that is safe to put in a `Location` header as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// `raw` if it is a same-origin relative path, else `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > MAX_CHARS || !is_safe_path(raw, Layer::Raw) {
            return None;
        }
        // What the escapes hide must be as harmless as what is shown: some
        // servers and proxies down the line decode once more.
        let mut layer = raw.to_owned();
        for _ in 0..MAX_DECODE_ROUNDS {
            let decoded = percent_decode(&layer)?;
            if decoded == layer {
                return Some(Self(raw.to_owned()));
            }
            if !is_safe_path(&decoded, Layer::Decoded) {
                return None;
            }
            layer = decoded;
        }
        None
    }

    /// `raw` if it is a same-origin relative path, or an absolute URL on
    /// one of `hosts`; else `None`.
    pub fn parse_with(raw: &str, hosts: &AllowedHosts) -> Option<Self> {
        if raw.starts_with('/') {
            Self::parse(raw)
        } else {
            hosts.allows_url(raw).then(|| Self(raw.to_owned()))
        }
    }

    /// `raw` if acceptable, else the default.
    pub fn or_default(raw: Option<&str>) -> Self {
        Self::or_default_with(raw, &AllowedHosts::default())
    }

    /// `raw` if acceptable (a path, or a URL on one of `hosts`), else the
    /// default.
    pub fn or_default_with(raw: Option<&str>, hosts: &AllowedHosts) -> Self {
        raw.and_then(|raw| Self::parse_with(raw, hosts))
            .unwrap_or_else(|| Self(DEFAULT.to_owned()))
    }

    /// The path (or URL).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the default (then links need not carry it).
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT
    }

    /// `path`, with `?return_to=` this path unless it is the default.
    pub fn link(&self, path: &str) -> String {
        if self.is_default() {
            path.to_owned()
        } else {
            format!("{path}?return_to={}", query_escape(&self.0))
        }
    }
}

/// How strictly a layer of the path is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// As received: it goes into a `Location` header as is.
    Raw,
    /// What percent-escapes hid: harmless text may now be non-ASCII.
    Decoded,
}

/// One path beginning with a single `/`, no backslash (browsers read it as
/// `/`), no control character and no dot segment; as received, visible
/// ASCII only (no space, no look-alike of `/` or `.`).
fn is_safe_path(path: &str, layer: Layer) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.starts_with('/') || path.contains('\\') {
        return false;
    }
    // Browsers drop tabs and newlines anywhere in a URL, which turns
    // `/\t/evil` into `//evil`.
    let printable = match layer {
        Layer::Raw => path.bytes().all(|b| b.is_ascii_graphic()),
        Layer::Decoded => !path.chars().any(char::is_control),
    };
    if !printable {
        return false;
    }
    let path_part = path.split(['?', '#']).next().unwrap_or_default();
    !path_part
        .split('/')
        .any(|segment| segment == "." || segment == "..")
}

/// One round of percent-decoding; `None` for a broken escape or bytes that
/// are not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|c| (c as char).to_digit(16))?;
            let lo = bytes.next().and_then(|c| (c as char).to_digit(16))?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes a value for a query string: unreserved characters and `/` stay.
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_paths_are_kept() {
        for good in [
            "/",
            "/account",
            "/account?tab=sessions",
            "/app/x?next=%2Fhome#top",
            "/a/b/c.html",
            "/search?q=a%20b",
            "/caf%C3%A9",
            "/x?y=http://evil.example",
            "/.well-known/x",
        ] {
            assert_eq!(
                ReturnTo::parse(good).map(|r| r.0),
                Some(good.to_owned()),
                "{good:?} was refused"
            );
        }
    }

    #[test]
    fn anything_that_could_leave_the_origin_is_refused() {
        for nasty in [
            "",
            "account",
            "//evil.example",
            "///evil.example",
            "//evil.example/%2F..",
            "/\\evil.example",
            "\\\\evil.example",
            "\\/evil.example",
            "https://evil.example",
            "http:/evil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            " /account",
            "/account ",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/acc\u{0}ount",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%09/evil.example",
            "/%0A/evil.example",
            "/%0d%0aSet-Cookie:x=y",
            "/%00",
            "/%252F%252Fevil.example",
            "/%25252F%25252Fevil.example",
            "/%",
            "/%G0",
            "/%C0%AF",
            "/%FF",
            "/\u{ff0f}\u{ff0f}evil.example",
            "/\u{2215}\u{2215}evil.example",
            "/é",
            "/..//evil.example",
            "/x/../../evil.example",
            "/./evil",
            "/x/..",
            "/x/%2e%2e/y",
            "/x/%2E%2E%2Fy",
            "//%65vil.example",
            "/%2F%2F%2F",
        ] {
            assert_eq!(ReturnTo::parse(nasty), None, "{nasty:?} was accepted");
            assert_eq!(ReturnTo::or_default(Some(nasty)).as_str(), DEFAULT);
        }
        assert_eq!(
            ReturnTo::parse(&format!("/{}", "a".repeat(MAX_CHARS))),
            None
        );
        assert_eq!(ReturnTo::or_default(None).as_str(), DEFAULT);
    }

    #[test]
    fn absolute_urls_only_on_allowed_hosts() {
        let hosts = AllowedHosts::new(&["allowed.test".to_owned()]).unwrap_or_default();
        for good in [
            "https://allowed.test/app?x=1",
            "http://allowed.test:8080/",
            "HTTPS://Allowed.Test/",
        ] {
            assert_eq!(
                ReturnTo::parse_with(good, &hosts).map(|r| r.0),
                Some(good.to_owned()),
                "{good:?} was refused"
            );
            assert_eq!(ReturnTo::parse(good), None, "only with the list");
        }
        for nasty in [
            "https://allowed.test.evil.com",
            "https://evil.com\\@allowed.test",
            "https://allowed.test@evil.com",
            "https://allowed.test%40evil.com",
            "https://evil.com%5C@allowed.test",
            "https%3A%2F%2Fallowed.test",
            "https://allowed.test./",
            "https://ALLOWED.TEST.evil.com/",
            "javascript://allowed.test/%0Aalert(1)",
            "//allowed.test/",
            "allowed.test/",
        ] {
            assert_eq!(
                ReturnTo::parse_with(nasty, &hosts),
                None,
                "{nasty:?} was accepted"
            );
            assert_eq!(
                ReturnTo::or_default_with(Some(nasty), &hosts).as_str(),
                DEFAULT
            );
        }
        // Paths keep their own checks.
        assert_eq!(ReturnTo::parse_with("//allowed.test", &hosts), None);
        assert!(ReturnTo::parse_with("/account", &hosts).is_some());
        let back = ReturnTo::parse_with("https://allowed.test/a?b=c", &hosts);
        assert_eq!(
            back.map(|r| r.link("/login")).as_deref(),
            Some("/login?return_to=https%3A//allowed.test/a%3Fb%3Dc")
        );
    }

    #[test]
    fn links_carry_the_path_escaped() {
        assert_eq!(ReturnTo::or_default(None).link("/login"), "/login");
        let r = ReturnTo::parse("/app?x=1&y=%2F#z");
        assert_eq!(
            r.map(|r| r.link("/login")).as_deref(),
            Some("/login?return_to=/app%3Fx%3D1%26y%3D%252F%23z")
        );
    }
}
