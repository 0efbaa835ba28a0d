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
            if cross_origin {
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
        let mut response = match this.stage.project() {
            StageProjection::Answered { response } => response
                .take()
                .unwrap_or_else(|| ApiError::internal().into_response()),
            StageProjection::Running { inner } => {
                match within(this.context, || {
                    catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
                }) {
                    Ok(Poll::Ready(Ok(response))) => response,
                    Ok(Poll::Ready(Err(never))) => match never {},
                    Err(_) => ApiError::internal().into_response(),
                    Ok(Poll::Pending) => {
                        let started = *this.started;
                        let deadline = this.deadline.get_or_insert_with(|| {
                            Box::pin(tokio::time::sleep_until((started + config.timeout).into()))
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
        this.context.close(&mut response, *this.started);
        let route = this.route.and_then(|index| config.routes.get(index));
        config.metrics.record(
            route,
            this.method,
            response.status().as_u16(),
            this.started.elapsed().as_secs_f64(),
        );
        Poll::Ready(Ok(response))
    }
}
