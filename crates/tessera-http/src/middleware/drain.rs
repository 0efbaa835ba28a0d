//! Draining before a shutdown: once [`Draining::start`] is called (on
//! SIGTERM), `/readyz` answers 503 so load balancers stop sending new
//! work, and every response says `Connection: close`, so clients and
//! proxies open their next connection elsewhere instead of reusing one
//! that is about to close. Requests keep being served all along.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::Request;
use http::{HeaderValue, Response, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Whether this node is draining; clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// From now on, this node is on its way out.
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Self::start`] was called.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Adds `Connection: close` to every response while draining.
#[derive(Clone)]
pub struct DrainLayer {
    draining: Draining,
}

impl DrainLayer {
    /// The layer over the node's flag.
    pub fn new(draining: Draining) -> Self {
        Self { draining }
    }
}

impl<S> Layer<S> for DrainLayer {
    type Service = Drain<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Drain {
            inner,
            draining: self.draining.clone(),
        }
    }
}

/// The service [`DrainLayer`] wraps around the router.
#[derive(Clone)]
pub struct Drain<S> {
    inner: S,
    draining: Draining,
}

impl<S, B> Service<Request> for Drain<S>
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
            draining: self.draining.clone(),
        }
    }
}

pin_project! {
    /// The router's response, marked as the connection's last while draining.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        draining: Draining,
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
        // Checked when the answer is ready: a request that began before
        // the drain still closes its connection.
        if this.draining.is_draining() {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response))
    }
}
