//! Headers every answer carries unless its handler says otherwise: nothing
//! the API answers is meant to be cached, framed, sniffed, or to leak a
//! referrer, and over TLS browsers must never fall back to plain HTTP.
//!
//! One layer with values built once: each header is a lookup and a cheap
//! clone of a static value per response.

use http::Response;
use http::{HeaderName, HeaderValue, header};

/// HSTS for two years, subdomains included, as the HSTS preload list asks.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// The defaults, in the order they are written.
const DEFAULTS: &[(HeaderName, &str)] = &[
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CACHE_CONTROL, "no-store"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// Marks a response that a reverse proxy may hand to the browser as the
/// answer of another host (forward authentication): it gets no
/// `Strict-Transport-Security`, which would set a policy for that host and
/// its subdomains that is not ours to set.
#[derive(Debug, Clone, Copy)]
pub struct ForOtherHosts;

/// The security headers every response gets when it lacks them.
#[derive(Debug)]
pub struct SecurityHeaders {
    headers: Box<[(HeaderName, HeaderValue)]>,
}

impl SecurityHeaders {
    /// The defaults, plus `Strict-Transport-Security` when `hsts` (serving
    /// HTTPS); applied by the front door.
    pub fn new(hsts: bool) -> Self {
        let mut headers: Vec<(HeaderName, HeaderValue)> = DEFAULTS
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect();
        if hsts {
            headers.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            ));
        }
        Self {
            headers: headers.into(),
        }
    }

    /// Changes `response` on its way out.
    pub fn edit<B>(&self, response: &mut Response<B>) {
        let other_hosts = response.extensions().get::<ForOtherHosts>().is_some();
        let present = response.headers_mut();
        // Room for all at once, rather than a regrowth halfway.
        present.reserve(self.headers.len());
        for (name, value) in self.headers.iter() {
            if other_hosts && name == header::STRICT_TRANSPORT_SECURITY {
                continue;
            }
            // One lookup per header: a handler's own value stays.
            if let header::Entry::Vacant(slot) = present.entry(name) {
                slot.insert(value.clone());
            }
        }
    }
}
