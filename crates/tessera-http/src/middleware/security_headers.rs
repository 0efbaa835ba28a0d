//! Headers every answer carries unless its handler says otherwise: nothing
//! the API answers is meant to be cached, framed, sniffed, or to leak a
//! referrer, and over TLS browsers must never fall back to plain HTTP.
//!
//! One layer with values built once: each header is a lookup and a cheap
//! clone of a static value per response.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use http::Response;
use http::{HeaderName, HeaderValue, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

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

/// Sets the security headers on every response that lacks them.
#[derive(Clone)]
pub struct SecurityHeadersLayer {
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl SecurityHeadersLayer {
    /// The defaults, plus `Strict-Transport-Security` when `hsts` (serving HTTPS).
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
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeaders {
            inner,
            headers: self.headers.clone(),
        }
    }
}

/// The service [`SecurityHeadersLayer`] wraps around the router.
#[derive(Clone)]
pub struct SecurityHeaders<S> {
    inner: S,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl<S, B> Service<Request> for SecurityHeaders<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(request),
            headers: self.headers.clone(),
        }
    }
}

pin_project! {
    /// The router's response, with the security headers it lacked.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        headers: Arc<[(HeaderName, HeaderValue)]>,
    }
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = std::task::ready!(this.inner.poll(cx));
        let other_hosts = response.extensions().get::<ForOtherHosts>().is_some();
        let present = response.headers_mut();
        for (name, value) in this.headers.iter() {
            if other_hosts && name == header::STRICT_TRANSPORT_SECURITY {
                continue;
            }
            if !present.contains_key(name) {
                present.insert(name.clone(), value.clone());
            }
        }
        Poll::Ready(Ok(response))
    }
}
