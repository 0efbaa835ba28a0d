//! The shape every middleware here that only touches the answer shares: a
//! layer that calls the inner service and hands its response to an
//! [`EditResponse`] on the way out. Each middleware then says only what it
//! changes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use http::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// What a middleware changes in every response.
pub trait EditResponse: Clone {
    /// Changes `response` on its way out.
    fn edit<B>(&self, response: &mut Response<B>);
}

/// Two editors in one layer (one future around the route instead of two):
/// `A` edits first.
impl<A: EditResponse, B: EditResponse> EditResponse for (A, B) {
    fn edit<Body>(&self, response: &mut Response<Body>) {
        self.0.edit(response);
        self.1.edit(response);
    }
}

/// Applies `E` to every response of the wrapped service.
#[derive(Clone)]
pub struct EditLayer<E> {
    editor: E,
}

impl<E> EditLayer<E> {
    /// The layer applying `editor`.
    pub fn new(editor: E) -> Self {
        Self { editor }
    }
}

impl<S, E: Clone> Layer<S> for EditLayer<E> {
    type Service = Edit<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        Edit {
            inner,
            editor: self.editor.clone(),
        }
    }
}

/// The service [`EditLayer`] wraps around the router.
#[derive(Clone)]
pub struct Edit<S, E> {
    inner: S,
    editor: E,
}

impl<S, E, B> Service<Request> for Edit<S, E>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    E: EditResponse,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(request),
            editor: self.editor.clone(),
        }
    }
}

pin_project! {
    /// The inner service's response, edited once it is ready.
    pub struct ResponseFuture<F, E> {
        #[pin]
        inner: F,
        editor: E,
    }
}

impl<F, E, B> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    E: EditResponse,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = std::task::ready!(this.inner.poll(cx));
        this.editor.edit(&mut response);
        Poll::Ready(Ok(response))
    }
}
