//! The CSRF token of an HTML form post: for unsafe form posts that carry a
//! cookie but no `X-CSRF-Token` header, the (size-limited) body is read
//! here, its `csrf_token` field stashed for the CSRF check, and the decoded
//! form handed on so the `Input` extractor decodes it only once.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;
use http_body_util::BodyExt;

use crate::body::{BodyFormat, MAX_BODY_BYTES, body_format, decode_form};
use crate::csrf::{CSRF_FIELD, CSRF_HEADER, is_unsafe};
use crate::problem::ApiError;

/// The CSRF token found in a form body, stashed for the extractors.
#[derive(Debug, Clone)]
pub struct FormCsrfToken(pub String);

/// A form body [`stash_form_token`] has already decoded, for [`crate::input::Input`].
#[derive(Debug, Clone)]
pub struct DecodedForm(pub serde_json::Value);

/// Middleware: for unsafe form posts without an `X-CSRF-Token` header,
/// reads the `csrf_token` field out of the (size-limited) body and stashes
/// it in the request's extensions, then hands the body on unchanged.
/// `exempt` are path prefixes whose handlers never read cookies (nor answer
/// in problem+json): their bodies are left alone.
pub async fn stash_form_token(
    State(exempt): State<&'static [&'static str]>,
    request: Request,
    next: Next,
) -> Response {
    // Only cookie-carrying requests can need the token.
    let path = request.uri().path();
    let wants_stash = is_unsafe(request.method())
        && request.headers().contains_key(header::COOKIE)
        && !exempt.iter().any(|prefix| path.starts_with(prefix))
        && !request.headers().contains_key(CSRF_HEADER)
        && body_format(request.headers().get(header::CONTENT_TYPE)) == Some(BodyFormat::Form);
    if !wants_stash {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_large {
                ApiError::body_too_large().into_response()
            } else {
                ApiError::bad_request("the request body could not be read").into_response()
            };
        }
    };
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
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
