//! Per-route request metrics: `tessera_http_requests_total{route, method,
//! status}` and `tessera_http_request_duration_seconds{route, method}`,
//! recorded once per request when its answer is ready.
//!
//! The route is the matched route template (`/v1/me/sessions/{id}`, from
//! the [`RouteTable`]), so ids never become labels; a request no route
//! matched counts as `unmatched`, and a method outside the standard ones as
//! `other`: nothing a client sends can add series beyond the routes ×
//! methods × statuses the server has. Each series' handles are kept per
//! route, not registered anew per request.

use std::sync::{Arc, RwLock};

use http::Method;
use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Unit};
use tessera_core::metrics::{Kind, Metrics, describe};

use super::route_table::{Route, RouteTable};

const REQUESTS: &str = "tessera_http_requests_total";
const DURATION: &str = "tessera_http_request_duration_seconds";
/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// The handles of one series, by method and status.
struct Entry {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

/// Every request, recorded into a server's [`Metrics`]: per route (by its
/// index in the [`RouteTable`], the last slot for unmatched requests) the
/// series seen so far, so a request costs a read lock and a short scan.
pub struct RequestMetrics {
    metrics: Arc<Metrics>,
    by_route: Box<[RwLock<Vec<Entry>>]>,
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

impl RequestMetrics {
    /// Requests to `routes` recorded into `metrics`.
    pub fn new(metrics: Arc<Metrics>, routes: &RouteTable) -> Self {
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
            metrics,
            by_route: (0..=routes.len()).map(|_| RwLock::default()).collect(),
        }
    }

    /// Counts one answer to a request for `route` (`None`: no route matched).
    pub fn record(&self, route: Option<&Route>, method: &'static str, status: u16, seconds: f64) {
        let index = route.map_or(self.by_route.len() - 1, |r| r.index);
        let Some(slot) = self.by_route.get(index) else {
            return;
        };
        {
            let entries = slot.read().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = entries
                .iter()
                .find(|e| e.status == status && e.method == method)
            {
                entry.requests.increment(1);
                entry.duration.record(seconds);
                return;
            }
        }
        let template = route.map_or(UNMATCHED, |r| &r.template);
        let entry = self.register(template, method, status);
        entry.requests.increment(1);
        entry.duration.record(seconds);
        let mut entries = slot.write().unwrap_or_else(|p| p.into_inner());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::route_table::api_of;

    #[test]
    fn methods_outside_the_standard_ones_are_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"PROPFIND").unwrap_or(Method::GET);
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn a_series_is_registered_once_and_counted_each_time() -> Result<(), String> {
        let metrics = Metrics::new();
        let routes = RouteTable::new(&api_of(&["/healthz", "/v1/me"]), &api_of(&[]))?;
        let recorded = RequestMetrics::new(metrics.clone(), &routes);
        let me = routes.find("/v1/me");
        for _ in 0..3 {
            recorded.record(me, "GET", 200, 0.001);
        }
        recorded.record(me, "GET", 401, 0.001);
        recorded.record(None, "other", 404, 0.001);
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
        assert!(
            text.contains(
                "tessera_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 1"
            ),
            "{text}"
        );
        Ok(())
    }
}
