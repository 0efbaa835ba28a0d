//! RFC 9457 problem details: every error the API answers (but the OAuth
//! endpoints, which speak RFC 6749 §5.2) is one of these.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tessera_core::CoreError;
use tessera_core::store::StoreError;

/// Prefix of every problem `type`: a stable URN, one per kind of error.
const TYPE_PREFIX: &str = "urn:tessera:problem:";

/// An error answer: status, a stable kind, a human title and detail.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

impl ApiError {
    /// A problem with the given status, kind (the tail of the type URN), title and detail.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400: the request body or parameters could not be understood.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
        )
    }

    /// 401: no valid credentials.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Not signed in",
            "this request needs a valid session cookie or bearer token",
        )
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, kind, "Forbidden", detail)
    }

    /// 413: the body is over [`crate::body::MAX_BODY_BYTES`].
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            format!(
                "request bodies are limited to {} bytes",
                crate::body::MAX_BODY_BYTES
            ),
        )
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "there is nothing here",
        )
    }

    /// 503 with a Retry-After hint.
    pub fn unavailable(kind: &'static str, detail: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            kind,
            "Service unavailable",
            detail,
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The Retry-After hint, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            kind: format!("{TYPE_PREFIX}{}", self.kind),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::InvalidUsername(reason) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-username",
                "Invalid username",
                reason.to_string(),
            ),
            CoreError::WeakPassword(reason) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "weak-password",
                "Password refused",
                reason.to_string(),
            ),
            CoreError::UsernameTaken => ApiError::new(
                StatusCode::CONFLICT,
                "username-taken",
                "Username taken",
                "an account with this username already exists",
            ),
            CoreError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "Invalid credentials",
                "the username or password is wrong",
            ),
            CoreError::Unauthenticated => ApiError::unauthenticated(),
            CoreError::InvalidGrant(detail) => ApiError::bad_request(detail),
            CoreError::NotFound => ApiError::not_found(),
            CoreError::RateLimited { retry_after } => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "Too many failed sign-ins",
                    format!("too many failed sign-ins; try again in {retry_after} s"),
                );
                e.retry_after = Some(retry_after);
                e
            }
            CoreError::TooManyRegistrations { retry_after } => {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "Too many registrations",
                    format!(
                        "too many registrations from this address; try again in {retry_after} s"
                    ),
                );
                e.retry_after = Some(retry_after);
                e
            }
            // The hint is when the queued work will be done, so polite
            // clients come back when there is room, not all at once.
            CoreError::Busy { retry_after } => ApiError::unavailable(
                "busy",
                format!("the server is handling too many sign-ins; try again in {retry_after} s"),
                retry_after,
            ),
            CoreError::Store(StoreError::Duplicate) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                "the request conflicts with existing data",
            ),
            CoreError::Store(StoreError::Unavailable(cause)) => {
                tracing::error!(%cause, "store unavailable");
                ApiError::unavailable("store-unavailable", "the data store cannot be reached", 5)
            }
            CoreError::Store(StoreError::Corrupt(cause)) => {
                tracing::error!(%cause, "stored data is invalid");
                internal()
            }
            CoreError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                internal()
            }
            CoreError::Keys(cause) => {
                tracing::error!(%cause, "signing keys unusable");
                internal()
            }
        }
    }
}

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "the server failed; the cause is in its log",
    )
}

/// Answers unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Answers known paths with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this path does not accept that method",
    )
}
