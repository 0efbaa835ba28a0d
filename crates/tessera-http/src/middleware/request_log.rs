//! Which request a log line belongs to, and the line that closes it.
//!
//! Each request gets its id here: the `x-request-id` it arrived with, or a
//! new one ([`RequestIds`]), echoed on its answer unless the handler set one.
//! While a request's future is polled, this thread's [`current`] request is
//! its context: `request_id`,
//! `method` and `route` (the matched route template, never the path or
//! query, which may hold ids or tokens). The log formatter adds them to
//! every line logged meanwhile. When the answer is ready one line (target
//! `tessera::request`) says its `status` and `duration_ms`: at `warn` for a
//! 5xx, at `debug` otherwise (`log = "info,tessera::request=debug"` logs
//! every request).
//!
//! Not a `tracing` span: an enabled span costs a request about an eighth of
//! its instructions (formatting its fields at creation, the registry) even
//! when the request logs nothing, while this context costs a thread-local
//! swap per poll (measured in docs/BENCHMARKS.md, "Metrics and logs").

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use http::{HeaderValue, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::middleware::request_id::{REQUEST_ID, RequestIds};
use crate::middleware::request_metrics::method_label;

/// The route of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// What every log line of a request says about it.
#[derive(Debug)]
pub struct RequestContext {
    request_id: HeaderValue,
    method: &'static str,
    route: Option<MatchedPath>,
}

impl RequestContext {
    /// The request id (empty if the header is not text).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    /// The method (`other` for a non-standard one).
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The matched route template, or `unmatched`.
    pub fn route(&self) -> &str {
        self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<RequestContext>>> = const { RefCell::new(None) };
}

/// Calls `f` with the request being handled on this thread, if any.
pub fn current<T>(f: impl FnOnce(Option<&RequestContext>) -> T) -> T {
    CURRENT.with(|c| match c.try_borrow() {
        Ok(current) => f(current.as_deref()),
        Err(_) => f(None),
    })
}

/// Gives each request its id, its log context and its closing line.
#[derive(Clone, Default)]
pub struct RequestLogLayer {
    ids: RequestIds,
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog {
            inner,
            ids: self.ids.clone(),
        }
    }
}

/// The service [`RequestLogLayer`] wraps around each route.
#[derive(Clone)]
pub struct RequestLog<S> {
    inner: S,
    ids: RequestIds,
}

impl<S, B> Service<Request> for RequestLog<S>
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
        let context = Arc::new(RequestContext {
            request_id: match request.headers().get(REQUEST_ID) {
                Some(given) => given.clone(),
                None => self.ids.next_id(),
            },
            method: method_label(request.method()),
            route: request.extensions().get::<MatchedPath>().cloned(),
        });
        let inner = within(&context, || self.inner.call(request));
        ResponseFuture {
            inner,
            context,
            started: Instant::now(),
        }
    }
}

/// Runs `f` with `context` as this thread's current request.
fn within<T>(context: &Arc<RequestContext>, f: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|c| c.replace(Some(context.clone())));
    // Put back even if `f` unwinds (the panic guard inside turns a panic
    // into a 500, but not before this frame is left).
    struct Restore(Option<Option<Arc<RequestContext>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take().flatten();
            let _ = CURRENT.try_with(|c| c.replace(previous));
        }
    }
    let _restore = Restore(Some(previous));
    f()
}

pin_project! {
    /// The route's response, polled as the request's.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        context: Arc<RequestContext>,
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
        let inner = this.inner;
        within(this.context, || {
            let Ok(mut response) = std::task::ready!(inner.poll(cx));
            if !response.headers().contains_key(REQUEST_ID) {
                response
                    .headers_mut()
                    .insert(REQUEST_ID, this.context.request_id.clone());
            }
            let status = response.status().as_u16();
            if response.status().is_server_error() {
                let duration_ms = this.started.elapsed().as_secs_f64() * 1000.0;
                tracing::warn!(target: "tessera::request", status, duration_ms, "request failed");
            } else if tracing::enabled!(target: "tessera::request", tracing::Level::DEBUG) {
                let duration_ms = this.started.elapsed().as_secs_f64() * 1000.0;
                tracing::debug!(target: "tessera::request", status, duration_ms, "request");
            }
            Poll::Ready(Ok(response))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_is_the_request_s_only_while_it_runs() {
        let context = Arc::new(RequestContext {
            request_id: HeaderValue::from_static("abc-1"),
            method: "GET",
            route: None,
        });
        assert!(current(|c| c.is_none()));
        let seen = within(&context, || {
            current(|c| c.map(|c| (c.request_id().to_owned(), c.method(), c.route().to_owned())))
        });
        assert_eq!(
            seen,
            Some(("abc-1".to_owned(), "GET", "unmatched".to_owned()))
        );
        assert!(current(|c| c.is_none()));
    }
}
