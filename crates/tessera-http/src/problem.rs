//! RFC 9457 problem details: every error the API answers (but the OAuth
//! endpoints, which speak RFC 6749 §5.2) is one of these.

use crate::json::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tessera_core::CoreError;
use tessera_core::store::StoreError;

/// Prefix of every problem `type`: a stable URN, one per kind of error.
const TYPE_PREFIX: &str = "urn:tessera:problem:";

/// Every kind of problem the API answers. Its type URN, title and status
/// are written here and nowhere else, so one kind always reads the same
/// (RFC 9457 §3.1.3: the title does not change from occurrence to
/// occurrence); what differs per occurrence goes in the detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// 400: the body or parameters could not be understood.
    InvalidRequest,
    /// 400: an OAuth client registration the rules refuse.
    InvalidClientMetadata,
    /// 400: a username the rules refuse.
    InvalidUsername,
    /// 400: a new password the rules refuse.
    WeakPassword,
    /// 400: a cookie and an Authorization header where only one may decide.
    AmbiguousCredentials,
    /// 401: no valid credentials for this request.
    Unauthenticated,
    /// 401: a sign-in with a wrong username or password.
    InvalidCredentials,
    /// 400: a passkey that cannot be registered (or a bad name for one).
    PasskeyRefused,
    /// 401: a passkey answer that proves no one.
    PasskeyNotAccepted,
    /// 401: the password was right; a second factor must follow (the
    /// answer carries `mfa_token`).
    MfaRequired,
    /// 401: an `mfa_token` unknown, expired, used, or from another address.
    InvalidMfaToken,
    /// 401: a wrong, used or malformed second-factor code at sign-in.
    InvalidCode,
    /// 403: the code confirming a TOTP enrolment is wrong.
    WrongCode,
    /// 403: the current password given to a password change is wrong.
    WrongPassword,
    /// 403: the caller is not an admin.
    NotAdmin,
    /// 403: the caller may not introspect tokens.
    NotVerifier,
    /// 403: a token an OAuth client got for a user (not a first-party
    /// client) used to manage that user's account.
    InsufficientScope,
    /// 403: an unsafe request from an origin that is not allowed.
    ForeignOrigin,
    /// 403: a cookie-authenticated unsafe request without its CSRF token.
    CsrfTokenMissing,
    /// 403: a cookie-authenticated unsafe request with a wrong CSRF token.
    CsrfTokenInvalid,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 409: the username belongs to another account.
    UsernameTaken,
    /// 409: the write conflicts with stored data.
    Conflict,
    /// 413: the body is over [`crate::body::MAX_BODY_BYTES`].
    BodyTooLarge,
    /// 415: neither JSON nor a form.
    UnsupportedMediaType,
    /// 421: a Host this server does not answer for.
    UnknownHost,
    /// 429: too many attempts from this address or at this account.
    RateLimited,
    /// 500: the cause is in the log, never in the answer.
    Internal,
    /// 503: the password-hashing line is full.
    Busy,
    /// 503: the data store cannot be reached.
    StoreUnavailable,
    /// 503 from `/readyz`.
    NotReady,
    /// 404: passkeys need `public_url` to name its host by a domain name
    /// (this server has none).
    PasskeysUnavailable,
}

impl ProblemKind {
    /// Every kind, for the OpenAPI document's list of problem types.
    pub const ALL: [ProblemKind; 33] = [
        Self::InvalidRequest,
        Self::InvalidClientMetadata,
        Self::InvalidUsername,
        Self::WeakPassword,
        Self::AmbiguousCredentials,
        Self::Unauthenticated,
        Self::InvalidCredentials,
        Self::PasskeyRefused,
        Self::PasskeyNotAccepted,
        Self::MfaRequired,
        Self::InvalidMfaToken,
        Self::InvalidCode,
        Self::WrongCode,
        Self::WrongPassword,
        Self::NotAdmin,
        Self::NotVerifier,
        Self::InsufficientScope,
        Self::ForeignOrigin,
        Self::CsrfTokenMissing,
        Self::CsrfTokenInvalid,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::UsernameTaken,
        Self::Conflict,
        Self::BodyTooLarge,
        Self::UnsupportedMediaType,
        Self::UnknownHost,
        Self::RateLimited,
        Self::Internal,
        Self::Busy,
        Self::StoreUnavailable,
        Self::NotReady,
        Self::PasskeysUnavailable,
    ];

    /// The `type` URN (`urn:tessera:problem:<slug>`).
    pub fn type_urn(self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug())
    }

    /// The tail of the `type` URN, its title and its HTTP status.
    const fn describe(self) -> (&'static str, &'static str, StatusCode) {
        use ProblemKind as K;
        match self {
            K::InvalidRequest => (
                "invalid-request",
                "Invalid request",
                StatusCode::BAD_REQUEST,
            ),
            K::InvalidClientMetadata => (
                "invalid-client-metadata",
                "Client registration refused",
                StatusCode::BAD_REQUEST,
            ),
            K::InvalidUsername => (
                "invalid-username",
                "Invalid username",
                StatusCode::BAD_REQUEST,
            ),
            K::WeakPassword => ("weak-password", "Password refused", StatusCode::BAD_REQUEST),
            K::AmbiguousCredentials => (
                "ambiguous-credentials",
                "Ambiguous credentials",
                StatusCode::BAD_REQUEST,
            ),
            K::Unauthenticated => (
                "unauthenticated",
                "Not authenticated",
                StatusCode::UNAUTHORIZED,
            ),
            K::InvalidCredentials => (
                "invalid-credentials",
                "Invalid credentials",
                StatusCode::UNAUTHORIZED,
            ),
            K::PasskeyRefused => (
                "passkey-refused",
                "Passkey refused",
                StatusCode::BAD_REQUEST,
            ),
            K::PasskeyNotAccepted => (
                "passkey-not-accepted",
                "Passkey not accepted",
                StatusCode::UNAUTHORIZED,
            ),
            K::MfaRequired => (
                "mfa-required",
                "Second factor required",
                StatusCode::UNAUTHORIZED,
            ),
            K::InvalidMfaToken => (
                "invalid-mfa-token",
                "Invalid or expired mfa_token",
                StatusCode::UNAUTHORIZED,
            ),
            K::InvalidCode => ("invalid-code", "Invalid code", StatusCode::UNAUTHORIZED),
            K::WrongCode => ("wrong-code", "Wrong code", StatusCode::FORBIDDEN),
            K::WrongPassword => ("wrong-password", "Wrong password", StatusCode::FORBIDDEN),
            K::NotAdmin => ("not-admin", "Forbidden", StatusCode::FORBIDDEN),
            K::NotVerifier => ("not-verifier", "Forbidden", StatusCode::FORBIDDEN),
            K::InsufficientScope => (
                "insufficient-scope",
                "Not for this client's tokens",
                StatusCode::FORBIDDEN,
            ),
            K::ForeignOrigin => ("foreign-origin", "Foreign origin", StatusCode::FORBIDDEN),
            K::CsrfTokenMissing => (
                "csrf-token-missing",
                "CSRF token missing",
                StatusCode::FORBIDDEN,
            ),
            K::CsrfTokenInvalid => (
                "csrf-token-invalid",
                "CSRF token invalid",
                StatusCode::FORBIDDEN,
            ),
            K::NotFound => ("not-found", "Not found", StatusCode::NOT_FOUND),
            K::MethodNotAllowed => (
                "method-not-allowed",
                "Method not allowed",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            K::UsernameTaken => ("username-taken", "Username taken", StatusCode::CONFLICT),
            K::Conflict => ("conflict", "Conflict", StatusCode::CONFLICT),
            K::BodyTooLarge => (
                "body-too-large",
                "Request body too large",
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            K::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported media type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            K::UnknownHost => (
                "unknown-host",
                "Misdirected request",
                StatusCode::MISDIRECTED_REQUEST,
            ),
            K::RateLimited => (
                "rate-limited",
                "Too many attempts",
                StatusCode::TOO_MANY_REQUESTS,
            ),
            K::Internal => (
                "internal",
                "Internal error",
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            K::Busy => (
                "busy",
                "Service unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            K::StoreUnavailable => (
                "store-unavailable",
                "Service unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            K::NotReady => (
                "not-ready",
                "Service unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            K::PasskeysUnavailable => (
                "passkeys-unavailable",
                "Passkeys unavailable",
                StatusCode::NOT_FOUND,
            ),
        }
    }

    /// The tail of the `type` URN (`urn:tessera:problem:<slug>`).
    pub const fn slug(self) -> &'static str {
        self.describe().0
    }

    /// The human title, the same for every occurrence.
    pub const fn title(self) -> &'static str {
        self.describe().1
    }

    /// The HTTP status.
    pub const fn status(self) -> StatusCode {
        self.describe().2
    }
}

/// An error answer: a kind, the detail of this occurrence, and for 429/503
/// when to come back.
#[derive(Debug)]
pub struct ApiError {
    kind: ProblemKind,
    detail: String,
    retry_after: Option<u64>,
    /// With [`ProblemKind::MfaRequired`]: the token the second step presents.
    mfa_token: Option<String>,
}

/// An RFC 9457 problem, as `application/problem+json`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody<'a> {
    /// What kind of problem: a URN, one per kind.
    #[serde(rename = "type")]
    #[schema(schema_with = problem_types)]
    kind: String,
    /// The kind's title, the same for every occurrence.
    title: &'a str,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong this time, for people.
    detail: &'a str,
    /// With `urn:tessera:problem:mfa-required` only: the token to present
    /// with the second factor to `POST /v1/session/mfa` (or the MFA grant),
    /// from the same address, within 5 minutes, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_token: Option<&'a str>,
}

/// The schema of `type`: one of the URNs of [`ProblemKind::ALL`], each
/// described with its status and title.
fn problem_types() -> utoipa::openapi::Object {
    let described = ProblemKind::ALL
        .iter()
        .map(|k| {
            format!(
                "- `{}`: {} {}",
                k.type_urn(),
                k.status().as_u16(),
                k.title()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(ProblemKind::ALL.iter().map(|k| k.type_urn())))
        .description(Some(format!("What kind of problem:\n{described}")))
        .build()
}

impl ApiError {
    /// A problem of the given kind with this occurrence's detail.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            retry_after: None,
            mfa_token: None,
        }
    }

    /// 401 `mfa-required`, carrying the second step's token.
    pub fn mfa_required(mfa_token: String) -> Self {
        let mut e = Self::new(
            ProblemKind::MfaRequired,
            "the password is right; send a code from the authenticator app (or a recovery code) with mfa_token",
        );
        e.mfa_token = Some(mfa_token);
        e
    }

    /// The second step's token of an `mfa-required` answer.
    pub fn mfa_token(&self) -> Option<&str> {
        self.mfa_token.as_deref()
    }

    /// The same, with a Retry-After hint in seconds (429, 503).
    pub fn retry_after_secs(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400: the request body or parameters could not be understood.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::InvalidRequest, detail)
    }

    /// 401: no valid credentials.
    pub fn unauthenticated() -> Self {
        Self::new(
            ProblemKind::Unauthenticated,
            "this request needs a valid session cookie or bearer token",
        )
    }

    /// 413: the body is over [`crate::body::MAX_BODY_BYTES`].
    pub fn body_too_large() -> Self {
        Self::new(
            ProblemKind::BodyTooLarge,
            format!(
                "request bodies are limited to {} bytes",
                crate::body::MAX_BODY_BYTES
            ),
        )
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::new(ProblemKind::NotFound, "there is nothing here")
    }

    /// 500: the cause goes to the log, not to the caller.
    pub fn internal() -> Self {
        Self::new(
            ProblemKind::Internal,
            "the server failed; the cause is in its log",
        )
    }

    /// The kind of problem.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
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
        let status = self.kind.status();
        let body = ProblemBody {
            kind: self.kind.type_urn(),
            title: self.kind.title(),
            status: status.as_u16(),
            detail: &self.detail,
            mfa_token: self.mfa_token.as_deref(),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\""),
            );
        }
        if self.kind == ProblemKind::InsufficientScope {
            // RFC 6750 §3.1.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\", error=\"insufficient_scope\""),
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
        use ProblemKind as K;
        match e {
            CoreError::InvalidUsername(reason) => {
                ApiError::new(K::InvalidUsername, reason.to_string())
            }
            CoreError::WeakPassword(reason) => ApiError::new(K::WeakPassword, reason.to_string()),
            CoreError::UsernameTaken => ApiError::new(
                K::UsernameTaken,
                "an account with this username already exists",
            ),
            CoreError::InvalidCredentials => {
                ApiError::new(K::InvalidCredentials, "the username or password is wrong")
            }
            CoreError::Unauthenticated => ApiError::unauthenticated(),
            CoreError::MfaRequired(token) => ApiError::mfa_required(token.expose()),
            CoreError::InvalidMfaToken => ApiError::new(
                K::InvalidMfaToken,
                "the mfa_token is invalid, expired or used; sign in again",
            ),
            CoreError::InvalidCode => {
                ApiError::new(K::InvalidCode, "the code is wrong or was used already")
            }
            CoreError::Conflict(detail) => ApiError::new(K::Conflict, detail),
            CoreError::InvalidGrant(detail) => ApiError::bad_request(detail),
            CoreError::NotFound => ApiError::not_found(),
            CoreError::ClientRefused(reason) => {
                ApiError::new(K::InvalidClientMetadata, reason.to_string())
            }
            CoreError::InvalidClient => {
                ApiError::new(K::Unauthenticated, "the client could not be authenticated")
            }
            CoreError::RateLimited { retry_after } => ApiError::new(
                K::RateLimited,
                format!("too many failed attempts; try again in {retry_after} s"),
            )
            .retry_after_secs(retry_after),
            CoreError::TooManyRegistrations { retry_after } => ApiError::new(
                K::RateLimited,
                format!("too many registrations from this address; try again in {retry_after} s"),
            )
            .retry_after_secs(retry_after),
            // The hint is when the queued work will be done, so polite
            // clients come back when there is room, not all at once.
            CoreError::Busy { retry_after } => ApiError::new(
                K::Busy,
                format!("the server is handling too many sign-ins; try again in {retry_after} s"),
            )
            .retry_after_secs(retry_after),
            CoreError::PasskeyRefused(reason) => ApiError::new(K::PasskeyRefused, reason),
            CoreError::PasskeyNotAccepted => ApiError::new(
                K::PasskeyNotAccepted,
                "the passkey was not accepted; start again",
            ),
            CoreError::PasskeysUnavailable => ApiError::new(
                K::PasskeysUnavailable,
                "passkeys need the server's public URL to name its host by a domain name",
            ),
            CoreError::Store(StoreError::Duplicate) => {
                ApiError::new(K::Conflict, "the request conflicts with existing data")
            }
            CoreError::Store(StoreError::Unavailable(cause)) => {
                tracing::error!(%cause, "store unavailable");
                ApiError::new(K::StoreUnavailable, "the data store cannot be reached")
                    .retry_after_secs(5)
            }
            CoreError::Store(StoreError::Corrupt(cause)) => {
                tracing::error!(%cause, "stored data is invalid");
                ApiError::internal()
            }
            CoreError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                ApiError::internal()
            }
            CoreError::Keys(cause) => {
                tracing::error!(%cause, "signing keys unusable");
                ApiError::internal()
            }
        }
    }
}

/// Answers unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Answers known paths with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ProblemKind::MethodNotAllowed,
        "this path does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use super::ProblemKind as K;

    const ALL: [K; 33] = K::ALL;

    #[test]
    fn every_kind_has_its_own_urn_and_an_error_status() {
        let mut slugs: Vec<_> = ALL.iter().map(|k| k.slug()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), ALL.len(), "two kinds share a type URN");
        for kind in ALL {
            assert!(kind.status().is_client_error() || kind.status().is_server_error());
            assert!(
                kind.slug()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{kind:?}"
            );
            assert!(!kind.title().is_empty());
        }
    }
}
