//! The CSRF token of an HTML form post: for unsafe form posts that carry a
//! cookie but no `X-CSRF-Token` header, the (size-limited) body is read
//! here, its `csrf_token` field stashed for the CSRF check, and the decoded
//! form handed on so the `Input` extractor decodes it only once.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::header;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::body::{BodyFormat, body_format, decode_form, read};
use crate::csrf::{CSRF_FIELD, CSRF_HEADER, is_unsafe};

/// The CSRF token found in a form body, stashed for the extractors.
#[derive(Debug, Clone)]
pub struct FormCsrfToken(pub String);

/// A form body [`FormTokenLayer`] has already decoded, for [`crate::input::Input`].
#[derive(Debug, Clone)]
pub struct DecodedForm(pub serde_json::Value);

/// The layer stashing form posts' CSRF tokens. `exempt` are path prefixes
/// whose handlers never read cookies (nor answer in problem+json): their
/// bodies are left alone.
#[derive(Debug, Clone, Copy)]
pub struct FormTokenLayer {
    exempt: &'static [&'static str],
}

impl FormTokenLayer {
    /// The layer, leaving bodies under `exempt` path prefixes alone.
    pub fn new(exempt: &'static [&'static str]) -> Self {
        Self { exempt }
    }
}

impl<S> Layer<S> for FormTokenLayer {
    type Service = FormToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FormToken {
            inner,
            exempt: self.exempt,
        }
    }
}

/// The service [`FormTokenLayer`] wraps around each route.
#[derive(Debug, Clone)]
pub struct FormToken<S> {
    inner: S,
    exempt: &'static [&'static str],
}

impl<S> FormToken<S> {
    /// Whether `request` is an unsafe, cookie-carrying form post without an
    /// `X-CSRF-Token` header: the only kind whose body may hold the token.
    /// Decided from the head alone, so every other request passes straight
    /// through (no allocation, no extra future).
    fn wants_stash(&self, request: &Request) -> bool {
        let path = request.uri().path();
        is_unsafe(request.method())
            && request.headers().contains_key(header::COOKIE)
            && !self.exempt.iter().any(|prefix| path.starts_with(prefix))
            && !request.headers().contains_key(CSRF_HEADER)
            && body_format(request.headers().get(header::CONTENT_TYPE)) == Some(BodyFormat::Form)
    }
}

impl<S> Service<Request> for FormToken<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !self.wants_stash(&request) {
            return ResponseFuture::Direct {
                inner: self.inner.call(request),
            };
        }
        // The service that was made ready goes with the request; this one
        // keeps a fresh clone for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::Stashing {
            inner: Box::pin(async move {
                match stash(request).await {
                    Ok(request) => inner.call(request).await,
                    Err(refused) => Ok(refused),
                }
            }),
        }
    }
}

pin_project! {
    /// The inner service's answer, directly or after the body was read.
    #[project = ResponseFutureProjection]
    pub enum ResponseFuture<F> {
        /// Not a form post needing its token: the inner future as is.
        Direct { #[pin] inner: F },
        /// A form post: its body read first.
        Stashing { inner: Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>> },
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseFutureProjection::Direct { inner } => inner.poll(cx),
            ResponseFutureProjection::Stashing { inner } => inner.as_mut().poll(cx),
        }
    }
}

/// Reads the (size-limited) body, stashes its `csrf_token` field in the
/// request's extensions and hands the body on unchanged; a body too large
/// or unreadable is answered here.
async fn stash(request: Request) -> Result<Request, Response> {
    let (mut parts, body) = request.into_parts();
    let bytes = read(body).await.map_err(IntoResponse::into_response)?;
    // A malformed (or empty) form is left for the handler's extractor to
    // refuse; a good one is handed on decoded, so it is decoded only once.
    if !bytes.is_empty()
        && let Ok(form) = decode_form(&bytes)
    {
        if let Some(serde_json::Value::String(token)) = form.get(CSRF_FIELD) {
            parts.extensions.insert(FormCsrfToken(token.clone()));
        }
        parts.extensions.insert(DecodedForm(form));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}
