//! The front door: what every request goes through, around the whole
//! router, as one service with one future. In order, on the way in: the
//! route found ([`super::route_table`]), the request's id and log context
//! ([`super::request_log`]), the host check ([`super::host`]), the CORS
//! preflight of the cross-origin routes ([`super::cors`]), and a guard that
//! turns a panic into a 500. On the way out: the CORS headers, the security
//! headers ([`super::security_headers`]), `Connection: close` while
//! draining ([`super::drain`]), the request id and closing log line, and
//! the request's metrics ([`super::request_metrics`]). An answer not ready
//! within the request timeout becomes a 408.
//!
//! One service around the router rather than a stack of layers on each
//! route: axum boxes a route's layers and clones the box for every request,
//! and each layer adds a future around the next (measured in
//! docs/BENCHMARKS.md, "The per-request floor, third round").

use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::cors::{CrossOrigin, decorate, is_preflight};
use super::drain::Draining;
use super::host::HostCheck;
use super::request_id::RequestIds;
use super::request_log::{RequestContext, within};
use super::request_metrics::{RequestMetrics, method_label};
use super::route_table::RouteTable;
use super::security_headers::SecurityHeaders;
use crate::problem::ApiError;

/// What the front door applies; shared by every request.
pub struct FrontDoorConfig {
    /// The router's routes.
    pub routes: RouteTable,
    /// Where requests are counted.
    pub metrics: RequestMetrics,
    /// Ids for requests that arrive without one.
    pub ids: RequestIds,
    /// The host names served.
    pub hosts: HostCheck,
    /// Who may call the cross-origin routes.
    pub cross_origin: CrossOrigin,
    /// The headers every answer gets.
    pub headers: SecurityHeaders,
    /// Whether the node is on its way out.
    pub draining: Draining,
    /// Longest a request may take.
    pub timeout: Duration,
}

/// The front door as a layer, for the router.
#[derive(Clone)]
pub struct FrontDoorLayer {
    config: Arc<FrontDoorConfig>,
}

impl FrontDoorLayer {
    /// The front door applying `config`.
    pub fn new(config: FrontDoorConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for FrontDoorLayer {
    type Service = FrontDoor<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FrontDoor {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`FrontDoorLayer`] puts around the router.
#[derive(Clone)]
pub struct FrontDoor<S> {
    inner: S,
    config: Arc<FrontDoorConfig>,
}

impl<S> FrontDoor<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    /// The make-service a server takes, each connection's address in the
    /// requests' extensions (as the router's own method does).
    pub fn into_make_service_with_connect_info<C>(
        self,
    ) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Self, C> {
        axum::ServiceExt::<Request>::into_make_service_with_connect_info(self)
    }
}

impl<S, B> Service<http::Request<B>> for FrontDoor<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let request = request.map(Body::new);
        let config = &self.config;
        let route = config.routes.find(request.uri().path());
        let method = method_label(request.method());
        let context = Arc::new(RequestContext::new(
            &config.ids,
            request.headers(),
            method,
            route.map(|r| r.template.clone()),
        ));
        let cross_origin = route.is_some_and(|r| r.cross_origin);
        let mut cors = None;
        let stage = if let Some(refusal) = config.hosts.refusal(&request) {
            Stage::Answered {
                response: Some(refusal.into_response()),
            }
        } else if cross_origin && is_preflight(&request) {
            // Answered here: a preflight never reaches a handler.
            let grant = config.cross_origin.grant(&request);
            Stage::Answered {
                response: Some(config.cross_origin.preflight(grant)),
            }
        } else {
            if cross_origin && config.cross_origin.grants_any() {
                cors = Some(config.cross_origin.grant(&request));
            }
            let inner = &mut self.inner;
            match within(&context, || {
                catch_unwind(AssertUnwindSafe(|| inner.call(request)))
            }) {
                Ok(inner) => Stage::Running { inner },
                Err(_) => Stage::Answered {
                    response: Some(ApiError::internal().into_response()),
                },
            }
        };
        FrontFuture {
            stage,
            deadline: None,
            config: config.clone(),
            context,
            route: route.map(|r| r.index),
            method,
            cors,
            started,
        }
    }
}

pin_project! {
    #[project = StageProjection]
    enum Stage<F> {
        /// The router is answering.
        Running { #[pin] inner: F },
        /// Answered at the door (refused, a preflight, a panic).
        Answered { response: Option<Response> },
    }
}

pin_project! {
    /// The answer, finished on its way out.
    pub struct FrontFuture<F> {
        #[pin]
        stage: Stage<F>,
        // Armed only if the answer is not ready at the first poll, as most
        // are not worth a timer.
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        config: Arc<FrontDoorConfig>,
        context: Arc<RequestContext>,
        route: Option<usize>,
        method: &'static str,
        // `Some` on a cross-origin route: the origin granted, if any.
        cors: Option<Option<HeaderValue>>,
        started: Instant,
    }
}

impl<F> Future for FrontFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let config = &**this.config;
        let context = &*this.context;
        // One entry into the request's context for the whole poll: the
        // route's work and the closing line both name the request.
        within(context, || {
            let mut response = match this.stage.project() {
                StageProjection::Answered { response } => response
                    .take()
                    .unwrap_or_else(|| ApiError::internal().into_response()),
                StageProjection::Running { inner } => {
                    match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                        Ok(Poll::Ready(Ok(response))) => response,
                        Ok(Poll::Ready(Err(never))) => match never {},
                        Err(_) => ApiError::internal().into_response(),
                        Ok(Poll::Pending) => {
                            let started = *this.started;
                            let deadline = this.deadline.get_or_insert_with(|| {
                                Box::pin(tokio::time::sleep_until(
                                    (started + config.timeout).into(),
                                ))
                            });
                            if deadline.as_mut().poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                            // The route's future is dropped with this one.
                            StatusCode::REQUEST_TIMEOUT.into_response()
                        }
                    }
                }
            };
            if let Some(grant) = this.cors.take() {
                decorate(&mut response, grant);
            }
            config.headers.edit(&mut response);
            config.draining.edit(&mut response);
            context.close(&mut response, *this.started);
            let route = this.route.and_then(|index| config.routes.get(index));
            config.metrics.record(
                route,
                this.method,
                response.status().as_u16(),
                this.started.elapsed().as_secs_f64(),
            );
            Poll::Ready(Ok(response))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::to_bytes;
    use http::header;
    use tessera_core::metrics::Metrics;
    use tower::ServiceExt as _;

    use super::*;
    use crate::middleware::host::HostPolicy;
    use crate::middleware::route_table::api_of;

    const APP: &str = "https://app.example";

    /// The front door around a handler that answers `/panic` (panicking in
    /// its future), `/panic-now` (in its call), `/slow`,
    /// `/api` (cross-origin) and `/page`; `calls` counts what reached it.
    fn door(
        calls: Arc<AtomicUsize>,
    ) -> Result<impl Service<Request, Response = Response, Error = Infallible> + Clone, String>
    {
        door_for(calls, vec![APP.to_owned()])
    }

    /// [`door`] granting CORS to `origins`.
    fn door_for(
        calls: Arc<AtomicUsize>,
        origins: Vec<String>,
    ) -> Result<impl Service<Request, Response = Response, Error = Infallible> + Clone, String>
    {
        let routes = RouteTable::new(
            &api_of(&["/panic", "/panic-now", "/slow", "/api", "/page"]),
            &api_of(&["/api"]),
        )?;
        let layer = FrontDoorLayer::new(FrontDoorConfig {
            metrics: RequestMetrics::new(Metrics::new(), &routes),
            routes,
            ids: RequestIds::default(),
            hosts: HostCheck::new(Some(HostPolicy::new("https://auth.example", &[])?), &[]),
            cross_origin: CrossOrigin::new(&origins),
            headers: SecurityHeaders::new(true),
            draining: Draining::default(),
            timeout: Duration::from_millis(200),
        });
        Ok(layer.layer(tower::service_fn(move |request: Request| {
            calls.fetch_add(1, Ordering::SeqCst);
            if request.uri().path() == "/panic-now" {
                std::panic::resume_unwind(Box::new("handler failed"));
            }
            async move {
                match request.uri().path() {
                    "/panic" => std::panic::resume_unwind(Box::new("handler failed")),
                    "/slow" => tokio::time::sleep(Duration::from_secs(5)).await,
                    _ => {}
                }
                Ok::<_, Infallible>(Response::new(Body::from("ok")))
            }
        })))
    }

    async fn send<S>(door: S, request: Request) -> Response
    where
        S: Service<Request, Response = Response, Error = Infallible>,
    {
        let Ok(response) = door.oneshot(request).await;
        response
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Result<Request, String> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "auth.example");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).map_err(|e| e.to_string())
    }

    /// Every answer leaves with the security headers and a request id.
    fn finished(response: &Response) -> bool {
        let h = response.headers();
        h.contains_key(header::STRICT_TRANSPORT_SECURITY)
            && h.contains_key(header::X_CONTENT_TYPE_OPTIONS)
            && h.contains_key("x-request-id")
    }

    #[tokio::test]
    async fn a_panic_in_a_handler_is_a_500_and_the_door_stays_open() -> Result<(), String> {
        let calls = Arc::new(AtomicUsize::new(0));
        let door = door(calls.clone())?;
        let response = send(door.clone(), request("GET", "/panic", &[])?).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(finished(&response));
        let body = to_bytes(response.into_body(), 4096)
            .await
            .map_err(|e| e.to_string())?;
        assert!(!String::from_utf8_lossy(&body).contains("handler failed"));
        let response = send(door.clone(), request("GET", "/panic-now", &[])?).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(finished(&response));
        let response = send(door, request("GET", "/page", &[])?).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        Ok(())
    }

    #[tokio::test]
    async fn an_answer_later_than_the_timeout_is_a_408() -> Result<(), String> {
        let door = door(Arc::new(AtomicUsize::new(0)))?;
        let started = Instant::now();
        let response = send(door, request("GET", "/slow", &[])?).await;
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(finished(&response));
        assert!(started.elapsed() < Duration::from_secs(4));
        Ok(())
    }

    #[tokio::test]
    async fn another_host_is_refused_before_any_handler() -> Result<(), String> {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut foreign = request("GET", "/page", &[])?;
        foreign
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("evil.example"));
        let response = send(door(calls.clone())?, foreign).await;
        assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
        assert!(finished(&response));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        Ok(())
    }

    #[tokio::test]
    async fn cors_only_on_cross_origin_routes_and_preflights_answered_at_the_door()
    -> Result<(), String> {
        let calls = Arc::new(AtomicUsize::new(0));
        let door = door(calls.clone())?;
        let preflight = [("origin", APP), ("access-control-request-method", "POST")];
        let response = send(door.clone(), request("OPTIONS", "/api", &preflight)?).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some(&HeaderValue::from_static(APP))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);

        let response = send(door.clone(), request("GET", "/api", &[("origin", APP)])?).await;
        assert_eq!(
            response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some(&HeaderValue::from_static(APP))
        );
        assert_eq!(
            response.headers().get(header::VARY),
            Some(&HeaderValue::from_static("origin"))
        );
        let response = send(
            door.clone(),
            request("GET", "/api", &[("origin", "https://evil.example")])?,
        )
        .await;
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );

        // Not a cross-origin route: no CORS at all, the preflight goes to the router.
        let response = send(door, request("OPTIONS", "/page", &preflight)?).await;
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        assert!(!response.headers().contains_key(header::VARY));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        Ok(())
    }

    #[tokio::test]
    async fn no_cors_step_when_no_origin_is_granted() -> Result<(), String> {
        let calls = Arc::new(AtomicUsize::new(0));
        let door = door_for(calls.clone(), Vec::new())?;
        let response = send(door.clone(), request("GET", "/api", &[("origin", APP)])?).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key(header::VARY));
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        assert!(finished(&response));
        // A preflight is still answered at the door, and grants nothing.
        let preflight = [("origin", APP), ("access-control-request-method", "POST")];
        let response = send(door, request("OPTIONS", "/api", &preflight)?).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        Ok(())
    }
}
