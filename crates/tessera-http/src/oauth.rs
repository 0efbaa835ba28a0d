//! The OAuth-style token endpoints: `/v1/token` (RFC 6749 password and
//! refresh grants), `/v1/token/revoke` (RFC 7009) and `/v1/token/introspect`
//! (RFC 7662). Their errors are RFC 6749 §5.2 JSON, not problem+json.

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
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

/// An RFC 6749 §5.2 error answer.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
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
                Self::new(e.status(), "temporarily_unavailable", e.detail())
            }
            // RFC 8628's registered "slow_down": wait Retry-After seconds.
            StatusCode::TOO_MANY_REQUESTS => Self::new(e.status(), "slow_down", e.detail()),
            status if status.is_server_error() => Self::new(status, "server_error", e.detail()),
            status => Self::new(status, "invalid_request", e.detail()),
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
                "invalid_grant",
                "the username or password is wrong",
            ),
            CoreError::InvalidGrant(description) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
            }
            CoreError::Store(StoreError::Duplicate) => {
                Self::new(StatusCode::CONFLICT, "invalid_request", "conflict")
            }
            CoreError::InvalidClient => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "the client could not be authenticated",
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
            "invalid_client",
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

/// The fields any token endpoint may receive; all optional, so that a
/// missing one gets a precise `invalid_request`.
#[derive(Deserialize, Default)]
pub struct TokenForm {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    token: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    // Accepted and ignored: RFC 7009 lets the server search every kind.
    #[serde(rename = "token_type_hint")]
    _token_type_hint: Option<String>,
}

fn required(value: Option<String>, name: &str) -> Result<String, OAuthError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required")))
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

fn token_response(grant: TokenGrant) -> Response {
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

/// `POST /v1/token`: `grant_type=authorization_code`, `password` or
/// `refresh_token`.
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
                "unsupported_grant_type",
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
        "refresh_token" => {
            let refresh = required(form.refresh_token, "refresh_token")?;
            let by =
                presenting_client(&state, &headers, form.client_id, form.client_secret).await?;
            let tokens = &state.core().token_sessions;
            tokens.check_refresh_client(&refresh, by.as_ref()).await?;
            tokens.refresh(&refresh, &client).await?
        }
        _ => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be `authorization_code`, `password` or `refresh_token`",
            ));
        }
    };
    Ok(token_response(grant))
}

/// `POST /v1/token/revoke` (RFC 7009): always 200 for a well-formed request,
/// whether or not the token meant anything.
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

/// `POST /v1/token/introspect` (RFC 7662): for resource servers holding the
/// introspection secret, and for administrators.
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
        Introspection::Inactive => json!({ "active": false }),
        Introspection::Access(claims) => json!({
            "active": true,
            "token_type": "access_token",
            "iss": claims.iss,
            "sub": claims.sub,
            "aud": claims.aud,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
            "sid": claims.sid,
            "roles": claims.roles,
        }),
        Introspection::Refresh { session, user } => json!({
            "active": true,
            "token_type": "refresh_token",
            "sub": user.id.to_string(),
            "username": user.username.display(),
            "sid": session.id.as_str(),
            "iat": session.created_at.unix_timestamp(),
            "exp": session.expires_at().unix_timestamp(),
        }),
    };
    let mut response = Json::<Value>(body).into_response();
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
        StatusCode::UNAUTHORIZED => {
            OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", e.detail())
        }
        StatusCode::FORBIDDEN => {
            OAuthError::new(StatusCode::FORBIDDEN, "insufficient_scope", e.detail())
        }
        _ => e.into(),
    }
}
