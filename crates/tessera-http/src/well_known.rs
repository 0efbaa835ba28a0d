//! Discovery: the public keys and the server's metadata.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_core::authorization::SCOPES;

use crate::state::AppState;

/// How long verifiers may cache the key set. Short, because a verifier that
/// meets an unknown `kid` should refetch anyway, and rotation is rare.
const JWKS_MAX_AGE: &str = "public, max-age=60";

/// `GET /.well-known/jwks.json`: current and still-valid previous public keys.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(json!({ "keys": state.core().signing_keys.jwks() })).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(JWKS_MAX_AGE),
    );
    response
}

/// `GET /.well-known/openid-configuration` and
/// `/.well-known/oauth-authorization-server` (RFC 8414): where everything is.
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
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
        vec!["authorization_code", "refresh_token", "password"]
    } else {
        vec!["authorization_code", "refresh_token"]
    };
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/v1/token"),
        "revocation_endpoint": format!("{issuer}/v1/token/revoke"),
        "introspection_endpoint": format!("{issuer}/v1/token/introspect"),
        "revocations_endpoint": format!("{issuer}/v1/revocations"),
        "authorization_endpoint": format!("{issuer}/v1/authorize"),
        "userinfo_endpoint": format!("{issuer}/v1/userinfo"),
        "end_session_endpoint": format!("{issuer}/v1/logout"),
        "grant_types_supported": grant_types,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash", "preferred_username"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "access_token_signing_alg_values_supported": access_algorithms,
        "id_token_signing_alg_values_supported": id_token_algorithms,
        "subject_types_supported": ["public"],
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
