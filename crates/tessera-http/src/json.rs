//! JSON answers, serialized straight into one `Vec`.
//!
//! axum's `Json` writes through `BytesMut`'s `io::Write` adapter, and
//! serde_json hands a writer many small pieces (every quote, key and
//! value): into a `Vec` each is a plain copy. [`written`] answers a body
//! written by hand, or kept (`GET /v1/me`), with the same headers.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

/// Room for the typical answer, so it is written without growing.
const TYPICAL_BYTES: usize = 256;
/// Room for the headers an answer leaves with (its content type and length,
/// the security headers, the request id, CORS), so the map never grows.
const ANSWER_HEADERS: usize = 12;

/// A JSON response body (`application/json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(TYPICAL_BYTES);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => written(body),
            Err(error) => {
                // Only a bug can get here (our types always serialize).
                tracing::error!(%error, "a JSON answer could not be serialized");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// A response carrying `body`, JSON already written.
pub fn written(body: impl Into<Bytes>) -> Response {
    let mut headers = HeaderMap::with_capacity(ANSWER_HEADERS);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = Response::new(Body::from(body.into()));
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[tokio::test]
    async fn answers_the_value_as_json() -> Result<(), axum::Error> {
        let response = Json(serde_json::json!({"a": [1, "x\"y"]})).into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/json"))
        );
        let body = axum::body::to_bytes(response.into_body(), 1024).await?;
        assert_eq!(&body[..], br#"{"a":[1,"x\"y"]}"#);
        Ok(())
    }

    #[test]
    fn a_value_json_cannot_hold_is_a_500() {
        // Keys that are not strings cannot be JSON object keys.
        let map: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
        assert_eq!(
            Json(map).into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
