//! CORS for the configured `allowed_origins` only, with credentials (so
//! never `*`). Browsers on those origins (SPAs) may call the token
//! endpoints and `/v1/me*`; everybody else gets no CORS headers at all.
//!
//! Our own layer rather than a general one: it sits on the hottest routes,
//! and a request without `Origin` (every non-browser and every same-origin
//! GET) costs one header lookup and one static `Vary`, with nothing to
//! clone or allocate per request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

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

/// The layer: grants CORS to `allowed` origins (exact, normalised origins).
#[derive(Clone)]
pub struct CrossOriginLayer {
    policy: Arc<Policy>,
}

struct Policy {
    allowed: Vec<String>,
    allowed_headers: HeaderValue,
}

impl CrossOriginLayer {
    /// CORS for exactly these origins (`https://app.example.com`).
    pub fn new(allowed: &[String]) -> Self {
        let allowed_headers = HeaderValue::from_str(&format!(
            "{}, {}, {CSRF_HEADER}",
            header::AUTHORIZATION,
            header::CONTENT_TYPE
        ))
        .unwrap_or(HeaderValue::from_static("authorization, content-type"));
        Self {
            policy: Arc::new(Policy {
                allowed: allowed.to_vec(),
                allowed_headers,
            }),
        }
    }
}

impl<S> Layer<S> for CrossOriginLayer {
    type Service = CrossOrigin<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CrossOrigin {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service [`CrossOriginLayer`] wraps around routes.
#[derive(Clone)]
pub struct CrossOrigin<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl Policy {
    /// The request's `Origin` if it is one we grant CORS to. Compared byte
    /// for byte: browsers send origins already normalised.
    fn grant(&self, request: &Request) -> Option<HeaderValue> {
        let origin = request.headers().get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.allowed
            .iter()
            .any(|allowed| allowed == text)
            .then(|| origin.clone())
    }

    /// The answer to a preflight; without a grant it carries no CORS
    /// headers, so the browser refuses the real request.
    fn preflight(&self, grant: Option<HeaderValue>) -> Response {
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
fn decorate(response: &mut Response, grant: Option<HeaderValue>) {
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

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl<S> Service<Request> for CrossOrigin<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let grant = self.policy.grant(&request);
        if is_preflight(&request) {
            // Answered here: a preflight never reaches a handler.
            return ResponseFuture {
                inner: None,
                preflight: Some(self.policy.preflight(grant)),
                grant: None,
            };
        }
        ResponseFuture {
            inner: Some(self.inner.call(request)),
            preflight: None,
            grant,
        }
    }
}

pin_project! {
    /// The response of [`CrossOrigin`]: the route's, marked, or the preflight answer.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        preflight: Option<Response>,
        grant: Option<HeaderValue>,
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => {
                let Ok(mut response) = std::task::ready!(inner.poll(cx));
                decorate(&mut response, this.grant.take());
                Poll::Ready(Ok(response))
            }
            None => Poll::Ready(Ok(this
                .preflight
                .take()
                .unwrap_or_else(|| Response::new(Body::empty())))),
        }
    }
}
