//! The request's span and its closing log line. Opened right after the
//! request id is set, so every line logged while the request is handled
//! carries `request_id`, `method` and `route` (the matched route template,
//! never the path or query, which may hold ids or tokens); when the answer
//! is ready one line says its `status` and `duration_ms`.
//!
//! The closing line is at `info` for answers a client should not have got
//! (5xx) at `warn`; set `log = "info,tessera_http::middleware::request_span=warn"`
//! to keep only those.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use http::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::Span;

/// The header the request id is in (set by the layer before this one).
const REQUEST_ID: &str = "x-request-id";
/// The route of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Opens a span per request and logs its outcome.
#[derive(Clone, Copy, Default)]
pub struct RequestSpanLayer;

impl<S> Layer<S> for RequestSpanLayer {
    type Service = RequestSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestSpan { inner }
    }
}

/// The service [`RequestSpanLayer`] wraps around each route.
#[derive(Clone)]
pub struct RequestSpan<S> {
    inner: S,
}

impl<S, B> Service<Request> for RequestSpan<S>
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
        let span = tracing::info_span!(
            "request",
            request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
            method = %request.method(),
            route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or(UNMATCHED, MatchedPath::as_str),
        );
        let inner = span.in_scope(|| self.inner.call(request));
        ResponseFuture {
            inner,
            span,
            started: Instant::now(),
        }
    }
}

pin_project! {
    /// The route's response, inside the request's span.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        started: Instant,
    }
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let Ok(response) = std::task::ready!(this.inner.poll(cx));
        let status = response.status().as_u16();
        let duration_ms = this.started.elapsed().as_secs_f64() * 1000.0;
        if response.status().is_server_error() {
            tracing::warn!(status, duration_ms, "request failed");
        } else {
            tracing::info!(status, duration_ms, "request");
        }
        Poll::Ready(Ok(response))
    }
}
