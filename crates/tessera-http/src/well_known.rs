//! Discovery: the public keys and the server's metadata.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::authorization::SCOPES;
use tessera_core::keys::Jwk;

use crate::openapi::responses as r;
use crate::state::AppState;

/// How long verifiers may cache the key set. Short, because a verifier that
/// meets an unknown `kid` should refetch anyway, and rotation is rare.
const JWKS_MAX_AGE: &str = "public, max-age=60";

/// A JWK set (RFC 7517 §5).
#[derive(Serialize, utoipa::ToSchema)]
pub struct JwkSet {
    /// The current and still-valid previous public keys (access tokens and
    /// ID tokens), each with its `kid`.
    keys: Vec<Jwk>,
}

/// `GET /.well-known/jwks.json`: current and still-valid previous public keys.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    responses(
        (status = 200, description = "The public keys", body = JwkSet,
            headers(("Cache-Control" = String, description = "`public, max-age=60`"))),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let body = JwkSet {
        keys: state.core().signing_keys.jwks(),
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(JWKS_MAX_AGE),
    );
    response
}

/// The server's metadata (OpenID Connect Discovery 1.0, RFC 8414).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Discovery {
    /// The issuer: the configured public URL.
    issuer: String,
    /// `/.well-known/jwks.json`.
    jwks_uri: String,
    /// `/v1/token`.
    token_endpoint: String,
    /// `/v1/token/revoke` (RFC 7009).
    revocation_endpoint: String,
    /// `/v1/token/introspect` (RFC 7662).
    introspection_endpoint: String,
    /// `/v1/revocations`: the revocation feed for verifiers.
    revocations_endpoint: String,
    /// `/v1/authorize`.
    authorization_endpoint: String,
    /// `/v1/userinfo`.
    userinfo_endpoint: String,
    /// `/v1/logout` (RP-initiated logout).
    end_session_endpoint: String,
    /// `authorization_code`, `refresh_token`, and `password` unless switched off.
    grant_types_supported: Vec<&'static str>,
    /// The `acr` values ID tokens carry: one factor, or more (a passkey
    /// counts as more).
    acr_values_supported: &'static [&'static str],
    /// `code`.
    response_types_supported: &'static [&'static str],
    /// `query`.
    response_modes_supported: &'static [&'static str],
    /// `S256`.
    code_challenge_methods_supported: &'static [&'static str],
    /// `openid`, `profile`.
    scopes_supported: &'static [&'static str],
    /// The claims ID tokens and UserInfo may carry.
    claims_supported: &'static [&'static str],
    /// `true` (RFC 9207).
    authorization_response_iss_parameter_supported: bool,
    /// `none`, `login`, `consent`.
    prompt_values_supported: &'static [&'static str],
    /// `none`, `client_secret_basic`, `client_secret_post`.
    token_endpoint_auth_methods_supported: &'static [&'static str],
    /// `none`.
    revocation_endpoint_auth_methods_supported: &'static [&'static str],
    /// `bearer`: the introspection secret.
    introspection_endpoint_auth_methods_supported: &'static [&'static str],
    /// The access tokens' algorithm (empty for HS256, which verifiers cannot check).
    access_token_signing_alg_values_supported: Vec<&'static str>,
    /// RS256 always, plus the configured algorithm.
    id_token_signing_alg_values_supported: Vec<&'static str>,
    /// `public`.
    subject_types_supported: &'static [&'static str],
}

/// `GET /.well-known/openid-configuration`: where everything is.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "discovery",
    responses(
        (status = 200, description = "The server's metadata", body = Discovery,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    metadata(&state)
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): the same
/// metadata as `/.well-known/openid-configuration`.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "discovery",
    responses(
        (status = 200, description = "The server's metadata", body = Discovery,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn oauth_authorization_server(State(state): State<AppState>) -> Response {
    metadata(&state)
}

fn metadata(state: &AppState) -> Response {
    let config = state.core().context.config();
    let issuer = config.tokens.issuer.trim_end_matches('/');
    let access_algorithms: Vec<&str> = if config.algorithm.is_public() {
        vec![config.algorithm.as_str()]
    } else {
        vec![]
    };
    let id_token_algorithms: Vec<&str> = state
        .core()
        .clients
        .id_token_algorithms()
        .into_iter()
        .map(|alg| alg.as_str())
        .collect();
    let grant_types: Vec<&str> = if config.password_grant {
        vec![
            "authorization_code",
            "refresh_token",
            "password",
            crate::oauth::MFA_GRANT,
        ]
    } else {
        vec!["authorization_code", "refresh_token"]
    };
    let body = Discovery {
        issuer: issuer.to_owned(),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        token_endpoint: format!("{issuer}/v1/token"),
        revocation_endpoint: format!("{issuer}/v1/token/revoke"),
        introspection_endpoint: format!("{issuer}/v1/token/introspect"),
        revocations_endpoint: format!("{issuer}/v1/revocations"),
        authorization_endpoint: format!("{issuer}/v1/authorize"),
        userinfo_endpoint: format!("{issuer}/v1/userinfo"),
        end_session_endpoint: format!("{issuer}/v1/logout"),
        grant_types_supported: grant_types,
        response_types_supported: &["code"],
        response_modes_supported: &["query"],
        code_challenge_methods_supported: &["S256"],
        scopes_supported: SCOPES,
        claims_supported: &[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "at_hash",
            "preferred_username",
            "amr",
            "acr",
        ],
        acr_values_supported: &[
            tessera_core::auth_methods::ACR_ONE_FACTOR,
            tessera_core::auth_methods::ACR_MULTI_FACTOR,
        ],
        authorization_response_iss_parameter_supported: true,
        prompt_values_supported: &["none", "login", "consent"],
        token_endpoint_auth_methods_supported: &[
            "none",
            "client_secret_basic",
            "client_secret_post",
        ],
        revocation_endpoint_auth_methods_supported: &["none"],
        introspection_endpoint_auth_methods_supported: &["bearer"],
        access_token_signing_alg_values_supported: access_algorithms,
        id_token_signing_alg_values_supported: id_token_algorithms,
        subject_types_supported: &["public"],
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
