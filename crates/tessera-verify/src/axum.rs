//! Tower and axum glue: a [`VerifyLayer`] that lets only requests with a
//! valid bearer token through, and a [`Verified`] extractor that hands a
//! handler the token's claims.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use tower::{Layer, Service};

use crate::claims::Claims;
use crate::error::VerifyError;
use crate::verifier::Verifier;

/// The verified claims of the request's bearer token. As an extractor it
/// takes the claims [`VerifyLayer`] found, or verifies the token itself
/// with a [`Verifier`] in the request extensions (`Extension(verifier)`).
#[derive(Debug, Clone)]
pub struct Verified(pub Claims);

/// The token of an `Authorization: Bearer` header, if there is exactly one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Verifies the request's bearer token.
async fn verify_headers(verifier: &Verifier, headers: &HeaderMap) -> Result<Claims, Rejection> {
    let token = bearer(headers).ok_or(Rejection::Missing)?;
    verifier.verify(token).await.map_err(Rejection::Verify)
}

/// Why a request was not let through; answers RFC 9457 problem+json.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// No bearer token (401).
    Missing,
    /// The token was refused (401) or the verifier cannot decide (503).
    Verify(VerifyError),
    /// The extractor found neither claims nor a [`Verifier`] (500: a
    /// wiring mistake in the service).
    NoVerifier,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, kind, detail) = match &self {
            Rejection::Missing => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "this request needs a bearer token".to_owned(),
            ),
            Rejection::Verify(e) if e.is_refusal() => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the bearer token is not valid".to_owned(),
            ),
            Rejection::Verify(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "verifier-unavailable",
                format!("tokens cannot be checked right now: {e}"),
            ),
            Rejection::NoVerifier => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "no verifier is configured for this route".to_owned(),
            ),
        };
        let body = serde_json::json!({
            "type": format!("urn:tessera:problem:{kind}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match status {
            StatusCode::UNAUTHORIZED => {
                let challenge = if matches!(self, Rejection::Missing) {
                    "Bearer"
                } else {
                    "Bearer error=\"invalid_token\""
                };
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Verified {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        if let Some(verified) = parts.extensions.get::<Verified>() {
            return Ok(verified.clone());
        }
        let verifier = parts
            .extensions
            .get::<Verifier>()
            .cloned()
            .ok_or(Rejection::NoVerifier)?;
        verify_headers(&verifier, &parts.headers)
            .await
            .map(Verified)
    }
}

/// A tower layer that answers 401 (no or bad token) or 503 (revocation
/// feed stale) itself and passes verified requests on, with [`Verified`]
/// in their extensions.
///
/// ```no_run
/// # async fn run(verifier: tessera_verify::Verifier) {
/// use axum::{Json, Router, routing::get};
/// use tessera_verify::{Verified, VerifyLayer};
///
/// let app: Router = Router::new()
///     .route("/hello", get(|Verified(claims): Verified| async move { Json(claims.sub) }))
///     .layer(VerifyLayer::new(verifier));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
}

impl VerifyLayer {
    /// A layer verifying with `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`VerifyLayer`] wraps around an inner one.
#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
}

impl<S, B> Service<Request<B>> for VerifyService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was made ready serves this request (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            match verify_headers(&verifier, request.headers()).await {
                Ok(claims) => {
                    request.extensions_mut().insert(Verified(claims));
                    inner.call(request).await
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_well_formed_bearer_counts() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer(&headers), None, "two tokens: neither");
    }
}
