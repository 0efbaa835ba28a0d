//! Login CSRF: before there is a session, the sign-in and registration
//! forms are bound to the browser that fetched them. `GET` sets a random
//! pre-session cookie (HttpOnly, SameSite=Strict, `__Host-` when secure) and
//! the form carries a token derived from it; `POST` must bring both. A
//! foreign site can make a browser post the form, but can neither read the
//! token nor set the cookie, so it cannot sign the browser into the
//! attacker's account. Nothing is stored: any node checks any form.

use http::{HeaderMap, HeaderValue, header};
use tessera_core::secret::{RandomError, constant_time_str_eq, random_token, sha256};

use super::page_error::PageError;
use crate::cookie::CookieConfig;
use crate::state::AppState;

/// Random bytes in the cookie value.
const COOKIE_BYTES: usize = 32;
/// Length of the cookie value (base64url of [`COOKIE_BYTES`]).
const COOKIE_CHARS: usize = 43;
/// Separates the form token's derivation from any other use of the value.
const LABEL: &[u8] = b"tessera login csrf v1\0";

/// The pre-session secret of one browser, as its cookie holds it.
#[derive(Clone)]
pub struct LoginCsrf {
    value: String,
}

impl std::fmt::Debug for LoginCsrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginCsrf([redacted])")
    }
}

impl LoginCsrf {
    /// A fresh secret.
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self {
            value: random_token(COOKIE_BYTES)?,
        })
    }

    /// The secret of the request's pre-session cookie, if well-formed.
    pub fn from_request(cookies: &CookieConfig, headers: &HeaderMap) -> Option<Self> {
        let name = cookie_name(cookies);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k.trim() == name).then(|| v.trim())
            })
            .find(|v| {
                v.len() == COOKIE_CHARS
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .map(|v| Self {
                value: v.to_owned(),
            })
    }

    /// The token the form carries in `csrf_token`.
    pub fn form_token(&self) -> String {
        let mut input = LABEL.to_vec();
        input.extend_from_slice(self.value.as_bytes());
        sha256(&input).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `given` is this browser's form token (constant time).
    pub fn accepts(&self, given: &str) -> bool {
        constant_time_str_eq(given, &self.form_token())
    }

    /// The `Set-Cookie` value that stores this secret for the browser
    /// session (no `Max-Age`: it ends when the browser closes).
    pub fn set_cookie(&self, cookies: &CookieConfig) -> Option<HeaderValue> {
        cookie_header(cookies, &format!("{}={}", cookie_name(cookies), self.value))
    }

    /// The `Set-Cookie` value that deletes the cookie (once signed in).
    pub fn clear_cookie(cookies: &CookieConfig) -> Option<HeaderValue> {
        cookie_header(cookies, &format!("{}=; Max-Age=0", cookie_name(cookies)))
    }
}

/// The pre-session secret for a form being shown: the browser's own if it
/// has one (so several open tabs all work), else a new one, with the
/// `Set-Cookie` that gives it to the browser.
pub fn for_form(
    cookies: &CookieConfig,
    headers: &HeaderMap,
) -> Result<(LoginCsrf, Option<HeaderValue>), RandomError> {
    if let Some(existing) = LoginCsrf::from_request(cookies, headers) {
        return Ok((existing, None));
    }
    let fresh = LoginCsrf::generate()?;
    let cookie = fresh.set_cookie(cookies);
    Ok((fresh, cookie))
}

/// The checks of a sign-in or registration post: not from a foreign origin,
/// and carrying the token of the browser's own pre-session cookie.
pub fn check(state: &AppState, headers: &HeaderMap, given: Option<&str>) -> Result<(), PageError> {
    state
        .http()
        .origins
        .check(headers)
        .map_err(|_| PageError::csrf())?;
    let cookie = LoginCsrf::from_request(&state.http().cookie, headers);
    match (cookie, given) {
        (Some(cookie), Some(given)) if cookie.accepts(given) => Ok(()),
        _ => Err(PageError::csrf()),
    }
}

/// The session cookie's name with `-login` appended: the same prefix
/// (`__Host-` when secure, `__Secure-` with a cookie domain) and so the same
/// protection from other hosts. It never carries `Domain`: forms are
/// fetched and posted on this host only.
fn cookie_name(cookies: &CookieConfig) -> String {
    format!("{}-login", cookies.effective_name())
}

fn cookie_header(cookies: &CookieConfig, start: &str) -> Option<HeaderValue> {
    let secure = if cookies.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{start}; Path=/; HttpOnly; SameSite=Strict{secure}"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(cookie: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.insert(header::COOKIE, value);
        }
        headers
    }

    #[test]
    fn the_token_matches_only_its_own_cookie() -> Result<(), RandomError> {
        let config = CookieConfig::default();
        let mine = LoginCsrf::generate()?;
        let other = LoginCsrf::generate()?;
        let set = mine
            .set_cookie(&config)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        assert!(set.starts_with("__Host-tessera-login="), "{set}");
        for attribute in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"] {
            assert!(set.contains(attribute), "{set} lacks {attribute}");
        }
        let pair = set.split(';').next().unwrap_or_default();
        let found = LoginCsrf::from_request(&config, &request_with(&format!("a=b; {pair}")));
        let found = found.map(|f| f.form_token());
        assert_eq!(found, Some(mine.form_token()));
        assert!(mine.accepts(&mine.form_token()));
        assert!(!mine.accepts(&other.form_token()));
        assert!(!mine.accepts(""));
        assert_ne!(mine.form_token(), mine.value, "the token is not the cookie");
        Ok(())
    }

    #[test]
    fn malformed_cookies_are_ignored() {
        let config = CookieConfig::default();
        for cookie in [
            "__Host-tessera-login=short",
            "__Host-tessera-login=",
            "__Host-tessera=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "__Host-tessera-login=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!",
        ] {
            assert!(
                LoginCsrf::from_request(&config, &request_with(cookie)).is_none(),
                "{cookie}"
            );
        }
        let plain = CookieConfig {
            secure: false,
            ..CookieConfig::default()
        };
        let cleared = LoginCsrf::clear_cookie(&plain)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default();
        assert!(
            cleared.starts_with("tessera-login=; Max-Age=0"),
            "{cleared}"
        );
        assert!(!cleared.contains("Secure"));
    }
}
