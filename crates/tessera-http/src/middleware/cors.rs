//! CORS for the configured `allowed_origins` only, with credentials (so
//! never `*`). Browsers on those origins (SPAs) may call the token
//! endpoints and `/v1/me*`; everybody else gets no CORS headers at all.
//!
//! Our own rather than a general one, applied by the front door to the
//! routes registered cross-origin: it sits on the hottest routes, and a
//! request without `Origin` (every non-browser and every same-origin GET)
//! costs one header lookup and one static `Vary`, with nothing to clone or
//! allocate per request. With no origin configured no answer depends on
//! `Origin`, so the routes' answers carry neither CORS headers nor `Vary`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::csrf::CSRF_HEADER;

/// How long browsers may cache a preflight answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";
const ALLOWED_METHODS: &str = "GET, POST, DELETE";
/// What a cross-origin script may read of a response besides the safelisted headers.
const EXPOSED_HEADERS: &str = "retry-after, www-authenticate";
/// Every answer depends on `Origin`, so shared caches must key on it.
const VARY_ACTUAL: &str = "origin";
const VARY_PREFLIGHT: &str =
    "origin, access-control-request-method, access-control-request-headers";

/// CORS for exactly the allowed origins (exact, normalised origins), on
/// the routes the front door marks cross-origin.
#[derive(Debug)]
pub struct CrossOrigin {
    allowed: Vec<String>,
    allowed_headers: HeaderValue,
}

impl CrossOrigin {
    /// CORS for exactly these origins (`https://app.example.com`).
    pub fn new(allowed: &[String]) -> Self {
        let allowed_headers = HeaderValue::from_str(&format!(
            "{}, {}, {CSRF_HEADER}",
            header::AUTHORIZATION,
            header::CONTENT_TYPE
        ))
        .unwrap_or(HeaderValue::from_static("authorization, content-type"));
        Self {
            allowed: allowed.to_vec(),
            allowed_headers,
        }
    }

    /// Whether any origin is granted CORS: without one, answers do not
    /// depend on `Origin` and need no CORS step at all.
    pub fn grants_any(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// The request's `Origin` if it is one we grant CORS to. Compared byte
    /// for byte: browsers send origins already normalised.
    pub fn grant<B>(&self, request: &http::Request<B>) -> Option<HeaderValue> {
        let origin = request.headers().get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.allowed
            .iter()
            .any(|allowed| allowed == text)
            .then(|| origin.clone())
    }

    /// The answer to a preflight; without a grant it carries no CORS
    /// headers, so the browser refuses the real request.
    pub fn preflight(&self, grant: Option<HeaderValue>) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(header::VARY, HeaderValue::from_static(VARY_PREFLIGHT));
        if let Some(origin) = grant {
            allow(headers, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                self.allowed_headers.clone(),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            );
        }
        response
    }
}

/// Marks an actual (non-preflight) response.
pub fn decorate(response: &mut Response, grant: Option<HeaderValue>) {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static(VARY_ACTUAL));
    if let Some(origin) = grant {
        allow(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
}

/// Lets scripts on `origin` read the answer, credentials included.
fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

/// Whether `request` is a CORS preflight (answered without a handler).
pub fn is_preflight<B>(request: &http::Request<B>) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}
