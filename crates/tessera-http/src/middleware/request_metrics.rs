//! Per-route request metrics: `tessera_http_requests_total{route, method,
//! status}` and `tessera_http_request_duration_seconds{route, method}`,
//! recorded once per request when its answer is ready.
//!
//! The route is axum's matched route template (`/v1/me/sessions/{id}`), so
//! ids never become labels; a request no route matched counts as
//! `unmatched`, and a method outside the standard ones as `other`: nothing
//! a client sends can add series beyond the routes × methods × statuses
//! the server has. Each series' handles are looked up in a small table of
//! this layer's own (a read lock and one string hash), not registered anew
//! per request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use http::{Method, Response};
use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Unit};
use pin_project_lite::pin_project;
use tessera_core::metrics::{Kind, Metrics, describe};
use tower::{Layer, Service};

const REQUESTS: &str = "tessera_http_requests_total";
const DURATION: &str = "tessera_http_request_duration_seconds";
/// The route label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

/// Records every request into a server's [`Metrics`].
#[derive(Clone)]
pub struct RequestMetricsLayer {
    series: Arc<Series>,
}

impl RequestMetricsLayer {
    /// Requests recorded into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let recorder = metrics.recorder();
        describe(
            recorder,
            Kind::Counter,
            REQUESTS,
            "HTTP requests answered, by matched route, method and status",
            None,
        );
        describe(
            recorder,
            Kind::Histogram,
            DURATION,
            "Time to answer an HTTP request (every middleware included), by matched route and method",
            Some(Unit::Seconds),
        );
        Self {
            series: Arc::new(Series {
                metrics,
                by_route: RwLock::new(HashMap::new()),
            }),
        }
    }
}

impl<S> Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            inner,
            series: self.series.clone(),
        }
    }
}

/// The handles of one route's series, by method and status.
struct Entry {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

/// The series seen so far, by route.
struct Series {
    metrics: Arc<Metrics>,
    by_route: RwLock<HashMap<Box<str>, Vec<Entry>>>,
}

/// A method as a label value: the standard ones by name, any other as `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

impl Series {
    fn record(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        {
            let table = self.by_route.read().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = table.get(route).and_then(|entries| {
                entries
                    .iter()
                    .find(|e| e.status == status && e.method == method)
            }) {
                entry.requests.increment(1);
                entry.duration.record(seconds);
                return;
            }
        }
        let entry = self.register(route, method, status);
        entry.requests.increment(1);
        entry.duration.record(seconds);
        let mut table = self.by_route.write().unwrap_or_else(|p| p.into_inner());
        let entries = table.entry(route.into()).or_default();
        // Another request may have added it meanwhile: the handles are the
        // same series either way.
        if !entries
            .iter()
            .any(|e| e.status == status && e.method == method)
        {
            entries.push(entry);
        }
    }

    fn register(&self, route: &str, method: &'static str, status: u16) -> Entry {
        let recorder = self.metrics.recorder();
        let metadata = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
        let route = Label::new("route", route.to_owned());
        let method_value = Label::from_static_parts("method", method);
        let requests = recorder.register_counter(
            &Key::from_parts(
                REQUESTS,
                vec![
                    route.clone(),
                    method_value.clone(),
                    Label::new("status", status.to_string()),
                ],
            ),
            &metadata,
        );
        let duration = recorder.register_histogram(
            &Key::from_parts(DURATION, vec![route, method_value]),
            &metadata,
        );
        Entry {
            method,
            status,
            requests,
            duration,
        }
    }
}

/// The service [`RequestMetricsLayer`] wraps around each route.
#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    series: Arc<Series>,
}

impl<S, B> Service<Request> for RequestMetrics<S>
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
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = method_label(request.method());
        ResponseFuture {
            inner: self.inner.call(request),
            observed: Some(Observed {
                series: self.series.clone(),
                route,
                method,
                started: Instant::now(),
            }),
        }
    }
}

/// What is recorded when the answer is ready.
struct Observed {
    series: Arc<Series>,
    route: Option<MatchedPath>,
    method: &'static str,
    started: Instant,
}

pin_project! {
    /// The route's response, recorded.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        observed: Option<Observed>,
    }
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(response) = std::task::ready!(this.inner.poll(cx));
        if let Some(o) = this.observed.take() {
            let route = o.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
            o.series.record(
                route,
                o.method,
                response.status().as_u16(),
                o.started.elapsed().as_secs_f64(),
            );
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_ones_are_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"PROPFIND").unwrap_or(Method::GET);
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn a_series_is_registered_once_and_counted_each_time() {
        let metrics = Metrics::new();
        let layer = RequestMetricsLayer::new(metrics.clone());
        for _ in 0..3 {
            layer.series.record("/v1/me", "GET", 200, 0.001);
        }
        layer.series.record("/v1/me", "GET", 401, 0.001);
        let text = metrics.render();
        assert!(
            text.contains(
                "tessera_http_requests_total{route=\"/v1/me\",method=\"GET\",status=\"200\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "tessera_http_request_duration_seconds_count{route=\"/v1/me\",method=\"GET\"} 4"
            ),
            "{text}"
        );
    }
}
