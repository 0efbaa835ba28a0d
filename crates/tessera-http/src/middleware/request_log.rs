//! Which request a log line belongs to, and the line that closes it.
//!
//! Each request gets its id from the front door ([`super::front_door`]):
//! the `x-request-id` it arrived with, or a new one
//! ([`super::request_id::RequestIds`]), echoed on its answer unless the
//! handler set one. While a request's future is polled, this thread's
//! [`current`] request is its context: `request_id`, `method` and `route`
//! (the matched route template, never the path or query, which may hold ids
//! or tokens). The log formatter adds them to every line logged meanwhile.
//! When the answer is ready one line (target `tessera::request`) says its
//! `status` and `duration_ms`: at `warn` for a 5xx, at `debug` otherwise
//! (`log = "info,tessera::request=debug"` logs every request).
//!
//! Not a `tracing` span: an enabled span costs a request about an eighth of
//! its instructions (formatting its fields at creation, the registry) even
//! when the request logs nothing, while this context costs a thread-local
//! swap per poll (measured in docs/BENCHMARKS.md, "Metrics and logs").

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Response, header};

use crate::middleware::request_id::{REQUEST_ID, RequestIds};
use crate::middleware::request_metrics::UNMATCHED;

/// What every log line of a request says about it.
#[derive(Debug)]
pub struct RequestContext {
    request_id: HeaderValue,
    method: &'static str,
    route: Option<Arc<str>>,
}

impl RequestContext {
    /// The context of a request for `route` (its template; `None`: no route
    /// matched), with the id it arrived with or the next of `ids`.
    pub fn new(
        ids: &RequestIds,
        headers: &HeaderMap,
        method: &'static str,
        route: Option<Arc<str>>,
    ) -> Self {
        Self {
            request_id: match headers.get(REQUEST_ID) {
                Some(given) => given.clone(),
                None => ids.next_id(),
            },
            method,
            route,
        }
    }

    /// Echoes the id on `response` unless its handler set one, and writes
    /// the request's closing line.
    pub fn close<B>(&self, response: &mut Response<B>, started: Instant) {
        if let header::Entry::Vacant(slot) = response.headers_mut().entry(REQUEST_ID) {
            slot.insert(self.request_id.clone());
        }
        let status = response.status().as_u16();
        if response.status().is_server_error() {
            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            tracing::warn!(target: "tessera::request", status, duration_ms, "request failed");
        } else if tracing::enabled!(target: "tessera::request", tracing::Level::DEBUG) {
            let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            tracing::debug!(target: "tessera::request", status, duration_ms, "request");
        }
    }

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
        self.route.as_deref().unwrap_or(UNMATCHED)
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

/// Runs `f` with `context` as this thread's current request.
pub fn within<T>(context: &Arc<RequestContext>, f: impl FnOnce() -> T) -> T {
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
