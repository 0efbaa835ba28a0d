//! The OAuth-style token endpoints: `/v1/token` (RFC 6749 password and
//! refresh grants), `/v1/token/revoke` (RFC 7009) and `/v1/token/introspect`
//! (RFC 7662). Their errors are RFC 6749 §5.2 JSON, not problem+json.

use crate::json::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use tessera_core::CoreError;
use tessera_core::oauth_client::OAuthClient;
use tessera_core::secret::constant_time_str_eq;
use tessera_core::store::StoreError;
use tessera_core::token_session::{Introspection, TokenGrant};
use zeroize::Zeroizing;

use crate::auth::{Admin, Client, bearer};
use crate::input::Input;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// The `error` codes the token endpoints answer (RFC 6749 §5.2, RFC 7009,
/// RFC 7662, RFC 6750 §3.1, and RFC 8628's `slow_down` with `Retry-After`).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[schema(as = OAuthErrorCode)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A field missing, malformed or repeated; a body refused.
    InvalidRequest,
    /// A wrong password, or a code or refresh token unknown, expired, used or replaced.
    InvalidGrant,
    /// The client could not be authenticated (or, at introspection, the caller).
    InvalidClient,
    /// A `grant_type` not served.
    UnsupportedGrantType,
    /// Too many attempts: wait `Retry-After` seconds.
    SlowDown,
    /// The store or the password hashing is unavailable for now.
    TemporarilyUnavailable,
    /// The server failed.
    ServerError,
    /// Introspection by a caller that may not introspect.
    InsufficientScope,
    /// The password was right and the user has a second factor: finish
    /// with `grant_type=urn:tessera:grant-type:mfa`, the `mfa_token` given
    /// and a code.
    MfaRequired,
}

/// An RFC 6749 §5.2 error body.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OAuthError)]
pub struct OAuthErrorBody<'a> {
    /// The error code.
    error: ErrorCode,
    /// What went wrong, for people.
    error_description: &'a str,
    /// With `mfa_required` only: the token to present with the code
    /// (`grant_type=urn:tessera:grant-type:mfa`), from the same address,
    /// within 5 minutes, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa_token: Option<&'a str>,
}

/// An RFC 6749 §5.2 error answer.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: ErrorCode,
    description: String,
    retry_after: Option<u64>,
    mfa_token: Option<String>,
}

impl OAuthError {
    fn new(status: StatusCode, error: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
            mfa_token: None,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            description,
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody {
            error: self.error,
            error_description: &self.description,
            mfa_token: self.mfa_token.as_deref(),
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
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

impl From<ApiError> for OAuthError {
    /// Body and media-type problems keep their status (413, 415) but speak OAuth.
    fn from(e: ApiError) -> Self {
        let mut error = match e.status() {
            StatusCode::SERVICE_UNAVAILABLE => {
                Self::new(e.status(), ErrorCode::TemporarilyUnavailable, e.detail())
            }
            // RFC 8628's registered "slow_down": wait Retry-After seconds.
            StatusCode::TOO_MANY_REQUESTS => Self::new(e.status(), ErrorCode::SlowDown, e.detail()),
            status if status.is_server_error() => {
                Self::new(status, ErrorCode::ServerError, e.detail())
            }
            status => Self::new(status, ErrorCode::InvalidRequest, e.detail()),
        };
        error.retry_after = e.retry_after();
        error
    }
}

impl From<CoreError> for OAuthError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::InvalidCredentials => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidGrant,
                "the username or password is wrong",
            ),
            CoreError::InvalidGrant(description) => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidGrant,
                description,
            ),
            CoreError::Store(StoreError::Duplicate) => {
                Self::new(StatusCode::CONFLICT, ErrorCode::InvalidRequest, "conflict")
            }
            CoreError::InvalidClient => Self::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidClient,
                "the client could not be authenticated",
            ),
            CoreError::MfaRequired(token) => {
                // 401, as `POST /v1/session` answers the same case.
                let mut error = Self::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::MfaRequired,
                    "the password is right; send a code with grant_type=urn:tessera:grant-type:mfa and mfa_token",
                );
                error.mfa_token = Some(token.expose());
                error
            }
            CoreError::InvalidMfaToken => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidGrant,
                "the mfa_token is invalid, expired or used; sign in again",
            ),
            CoreError::InvalidCode => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidGrant,
                "the code is wrong or was used already",
            ),
            other => ApiError::from(other).into(),
        }
    }
}

/// The encoded credentials of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
}

/// The client that authenticated on this request, if it tried: a refresh
/// token is bound to the client it was issued to.
async fn presenting_client(
    state: &AppState,
    headers: &HeaderMap,
    form_id: Option<String>,
    form_secret: Option<String>,
) -> Result<Option<OAuthClient>, OAuthError> {
    if basic_credentials(headers).is_none() && form_id.as_deref().is_none_or(str::is_empty) {
        return Ok(None);
    }
    let (client_id, secret) = client_credentials(headers, form_id, form_secret)?;
    let client = state
        .core()
        .clients
        .authenticate(&client_id, secret.as_deref().map(String::as_str))
        .await?;
    Ok(Some(client))
}

/// The client's id and secret: HTTP Basic (`client_secret_basic`, each part
/// form-urlencoded, RFC 6749 §2.3.1) or the form's fields
/// (`client_secret_post`, or `none` with `client_id` alone). Using both
/// ways at once is refused.
fn client_credentials(
    headers: &HeaderMap,
    form_id: Option<String>,
    form_secret: Option<String>,
) -> Result<(String, Option<Zeroizing<String>>), OAuthError> {
    let invalid_client = || {
        OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidClient,
            "the client could not be authenticated",
        )
    };
    match basic_credentials(headers) {
        Some(encoded) => {
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method",
                ));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| invalid_client())?;
            let decoded = Zeroizing::new(String::from_utf8(decoded).map_err(|_| invalid_client())?);
            let (id, secret) = decoded.split_once(':').ok_or_else(invalid_client)?;
            let unescape = |s: &str| -> Result<String, OAuthError> {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_str(&format!("v={}", s.replace('&', "%26")))
                        .map_err(|_| invalid_client())?;
                pairs
                    .into_iter()
                    .next()
                    .map(|(_, v)| v)
                    .ok_or_else(invalid_client)
            };
            let id = unescape(id)?;
            if form_id.as_deref().is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the one authenticated",
                ));
            }
            Ok((id, Some(Zeroizing::new(unescape(secret)?))))
        }
        None => {
            let id = required(form_id, "client_id")?;
            Ok((
                id,
                form_secret.filter(|s| !s.is_empty()).map(Zeroizing::new),
            ))
        }
    }
}

/// The grant that finishes a password grant stopped for a second factor.
pub const MFA_GRANT: &str = "urn:tessera:grant-type:mfa";

/// The fields any token endpoint may receive; all optional, so that a
/// missing one gets a precise `invalid_request`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct TokenForm {
    /// `authorization_code`, `password`, `refresh_token` or
    /// `urn:tessera:grant-type:mfa` (`/v1/token`).
    grant_type: Option<String>,
    /// The MFA grant's token (from the password grant's `mfa_required`).
    mfa_token: Option<String>,
    /// The password grant's username.
    username: Option<String>,
    /// The password grant's password.
    password: Option<String>,
    /// The refresh grant's refresh token.
    refresh_token: Option<String>,
    /// The token to revoke or introspect.
    token: Option<String>,
    /// The authorization code; in the MFA grant, the code from the
    /// authenticator app or a recovery code.
    code: Option<String>,
    /// In the MFA grant instead of `code`: the passkey ceremony `POST
    /// /v1/session/mfa/passkey` began...
    ceremony_id: Option<String>,
    /// ...and the browser's answer to it (`PublicKeyCredential` as JSON
    /// text).
    credential: Option<String>,
    /// The redirect URI the code was issued for.
    redirect_uri: Option<String>,
    /// The PKCE verifier of the code's challenge.
    code_verifier: Option<String>,
    /// The OAuth client (`none` and `client_secret_post`).
    client_id: Option<String>,
    /// A confidential client's secret (`client_secret_post`).
    client_secret: Option<String>,
    /// Accepted and ignored: RFC 7009 lets the server search every kind.
    #[serde(rename = "token_type_hint")]
    _token_type_hint: Option<String>,
}

fn required(value: Option<String>, name: &str) -> Result<String, OAuthError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required")))
}

/// A token pair (RFC 6749 §5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TokenResponse {
    /// The access token (a JWT).
    access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// The refresh token: single use, each use answers a new pair.
    refresh_token: String,
    /// The session's public id (the tokens' `sid`).
    session_id: String,
    /// The ID token, when the authorization asked for `openid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    /// The granted scopes (authorization-code grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

pub(crate) fn token_response(grant: TokenGrant) -> Response {
    with_id_token(grant, None, None)
}

fn with_id_token(grant: TokenGrant, id_token: Option<String>, scope: Option<String>) -> Response {
    let body = TokenResponse {
        access_token: grant.access_token,
        token_type: "Bearer",
        expires_in: grant.expires_in,
        refresh_token: grant.refresh_token.expose(),
        session_id: grant.session.id.as_str().to_owned(),
        id_token,
        scope,
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /v1/token`: `grant_type=authorization_code`, `password`,
/// `refresh_token` or `urn:tessera:grant-type:mfa`.
///
/// A password grant for a user with a second factor answers 401
/// `mfa_required` with an `mfa_token`; the MFA grant (`mfa_token`, `code`:
/// a TOTP code or a recovery code) from the same address within 5 minutes
/// finishes it. Wrong codes count against the sign-in limits (`slow_down`
/// with `Retry-After` once reached, even for a right code).
///
/// A refresh token is single-use: each use answers a new pair, and a
/// replaced one presented after the grace window ends its whole session
/// (`invalid_grant`). A confidential client authenticates with HTTP Basic
/// or `client_id` and `client_secret` in the body.
#[utoipa::path(
    post,
    path = "/v1/token",
    tag = "tokens",
    request_body(content(
        (TokenForm = "application/x-www-form-urlencoded"),
        (TokenForm = "application/json"),
    )),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse,
            headers(("Cache-Control" = String, description = "`no-store`"),
                    ("Pragma" = String, description = "`no-cache`"))),
        (status = 400, response = crate::openapi::responses::OAuthBadRequest),
        (status = 401, response = crate::openapi::responses::OAuthInvalidClient),
        (status = "default", response = crate::openapi::responses::OAuthOther),
    ),
)]
pub async fn token(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    input: Result<Input<TokenForm>, ApiError>,
) -> Result<Response, OAuthError> {
    let form = input?.value;
    let grant_type = required(form.grant_type, "grant_type")?;
    let grant = match grant_type.as_str() {
        "authorization_code" => {
            let (client_id, secret) =
                client_credentials(&headers, form.client_id, form.client_secret)?;
            let code = required(form.code, "code")?;
            let redirect_uri = required(form.redirect_uri, "redirect_uri")?;
            let verifier = required(form.code_verifier, "code_verifier")?;
            let oauth_client = state
                .core()
                .clients
                .authenticate(&client_id, secret.as_deref().map(String::as_str))
                .await?;
            let done = state
                .core()
                .authorization
                .exchange(&oauth_client, &code, &redirect_uri, &verifier, &client)
                .await?;
            return Ok(with_id_token(done.grant, done.id_token, Some(done.scope)));
        }
        "password" if !state.core().context.config().password_grant => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::UnsupportedGrantType,
                "the password grant is switched off: use the authorization code flow",
            ));
        }
        "password" => {
            let username = required(form.username, "username")?;
            let password = Zeroizing::new(required(form.password, "password")?);
            state
                .core()
                .token_sessions
                .sign_in(&username, password, &client)
                .await?
        }
        MFA_GRANT => {
            let mfa_token = required(form.mfa_token, "mfa_token")?;
            let core = state.core();
            match (form.code, form.ceremony_id, form.credential) {
                (None, Some(ceremony_id), Some(credential)) => {
                    let ceremony_id = uuid::Uuid::parse_str(&ceremony_id)
                        .map_err(|_| OAuthError::invalid_request("`ceremony_id` is malformed"))?;
                    let credential = serde_json::from_str(&credential)
                        .map_err(|_| OAuthError::invalid_request("`credential` is not JSON"))?;
                    let done = core
                        .mfa_sign_in
                        .complete_with_passkey(
                            &mfa_token,
                            tessera_core::session::SessionKind::Token,
                            ceremony_id,
                            credential,
                            &client,
                        )
                        .await?;
                    core.token_sessions.finish(done, &client).await?
                }
                (code, _, _) => {
                    let code = required(code, "code")?;
                    core.token_sessions
                        .complete_mfa(&mfa_token, &code, &client)
                        .await?
                }
            }
        }
        "refresh_token" => {
            let refresh = required(form.refresh_token, "refresh_token")?;
            let by =
                presenting_client(&state, &headers, form.client_id, form.client_secret).await?;
            state
                .core()
                .token_sessions
                .refresh(&refresh, by.as_ref(), &client)
                .await?
        }
        _ => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::UnsupportedGrantType,
                "grant_type must be `authorization_code`, `password`, `refresh_token` or `urn:tessera:grant-type:mfa`",
            ));
        }
    };
    Ok(token_response(grant))
}

/// `POST /v1/token/revoke` (RFC 7009): always 200 for a well-formed request,
/// whether or not the token meant anything.
///
/// `token` is a refresh or an access token; its session is revoked.
#[utoipa::path(
    post,
    path = "/v1/token/revoke",
    operation_id = "revoke_token",
    tag = "tokens",
    request_body(content(
        (TokenForm = "application/x-www-form-urlencoded"),
        (TokenForm = "application/json"),
    )),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (no body)"),
        (status = 400, response = crate::openapi::responses::OAuthBadRequest),
        (status = "default", response = crate::openapi::responses::OAuthOther),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    Client(client): Client,
    input: Result<Input<TokenForm>, ApiError>,
) -> Result<Response, OAuthError> {
    let token = required(input?.value.token, "token")?;
    state
        .core()
        .token_sessions
        .revoke_token(&token, &client)
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// What a token is (RFC 7662 §2.2): `{"active": false}` alone for one that
/// means nothing (unknown, expired, revoked), else its facts.
#[derive(Serialize, Default, utoipa::ToSchema)]
#[schema(as = Introspection)]
struct IntrospectionBody {
    /// Whether the token is valid now.
    active: bool,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(examples("access_token", "refresh_token"))]
    token_type: Option<&'static str>,
    /// Issuer (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    /// The user's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// Audience (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    /// The username (refresh tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// Issued at (Unix seconds): for a refresh token, its session's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    /// Expiry (Unix seconds): for a refresh token, its session's idle expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    /// The access token's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// The session's public id.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// The user's roles when the access token was minted.
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
}

/// `POST /v1/token/introspect` (RFC 7662): for resource servers holding the
/// introspection secret, and for administrators.
#[utoipa::path(
    post,
    path = "/v1/token/introspect",
    tag = "tokens",
    request_body(content(
        (TokenForm = "application/x-www-form-urlencoded"),
        (TokenForm = "application/json"),
    )),
    security(("introspection_secret" = []), ("admin_token" = []), ("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "What the token is", body = IntrospectionBody,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = crate::openapi::responses::OAuthBadRequest),
        (status = 401, response = crate::openapi::responses::OAuthInvalidClient),
        (status = 403, description = "`insufficient_scope`: the caller is signed in but neither holds the introspection secret nor is an administrator",
            body = crate::oauth::OAuthErrorBody),
        (status = "default", response = crate::openapi::responses::OAuthOther),
    ),
)]
pub async fn introspect(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, OAuthError> {
    let (mut parts, body) = request.into_parts();
    authorize_verifier(&mut parts, &state)
        .await
        .map_err(verifier_error)?;
    let input = Input::<TokenForm>::from_request(Request::from_parts(parts, body), &state).await;
    let token = required(input?.value.token, "token")?;
    let body = match state.core().token_sessions.introspect(&token).await? {
        Introspection::Inactive => IntrospectionBody::default(),
        Introspection::Access(claims) => IntrospectionBody {
            active: true,
            token_type: Some("access_token"),
            iss: Some(claims.iss),
            sub: Some(claims.sub),
            aud: Some(claims.aud),
            iat: Some(claims.iat),
            exp: Some(claims.exp),
            jti: Some(claims.jti),
            sid: Some(claims.sid),
            roles: Some(claims.roles),
            username: None,
        },
        Introspection::Refresh { session, user } => IntrospectionBody {
            active: true,
            token_type: Some("refresh_token"),
            sub: Some(user.id.to_string()),
            username: Some(user.username.display().to_owned()),
            sid: Some(session.id.as_str().to_owned()),
            iat: Some(session.created_at.unix_timestamp()),
            exp: Some(session.expires_at().unix_timestamp()),
            ..IntrospectionBody::default()
        },
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

use axum::extract::FromRequest as _;

/// Lets through the introspection secret, the admin token, or an admin user.
pub async fn authorize_verifier(
    parts: &mut http::request::Parts,
    state: &AppState,
) -> Result<(), ApiError> {
    if let Some(secret) = &state.http().introspection_secret
        && bearer(&parts.headers)
            .is_some_and(|given| constant_time_str_eq(given, secret.expose_secret()))
    {
        return Ok(());
    }
    match Admin::from_request_parts(parts, state).await {
        Ok(_) => Ok(()),
        Err(e) if e.status() == StatusCode::FORBIDDEN => Err(ApiError::new(
            ProblemKind::NotVerifier,
            "this needs the introspection secret or the admin role",
        )),
        Err(_) => Err(ApiError::new(
            ProblemKind::Unauthenticated,
            "send the introspection secret as a bearer token",
        )),
    }
}

/// The OAuth form of a verifier-authorisation failure (RFC 7662 §2.3).
fn verifier_error(e: ApiError) -> OAuthError {
    match e.status() {
        StatusCode::UNAUTHORIZED => OAuthError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidClient,
            e.detail(),
        ),
        StatusCode::FORBIDDEN => OAuthError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InsufficientScope,
            e.detail(),
        ),
        _ => e.into(),
    }
}
