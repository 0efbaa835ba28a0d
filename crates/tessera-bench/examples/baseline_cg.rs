//! Profiling aid: the axum + jsonwebtoken baseline alone, with its own
//! Ed25519 key; writes N Tessera-shaped tokens to a file, then serves.
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::json;
use tessera_core::jwt::AccessClaims;

struct Check {
    key: DecodingKey,
    validation: Validation,
}

async fn me(State(check): State<Arc<Check>>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match jsonwebtoken::decode::<AccessClaims>(token, &check.key, &check.validation) {
        Ok(data) => {
            let c = data.claims;
            Json(json!({ "id": c.sub, "session_id": c.sid, "roles": c.roles })).into_response()
        }
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().unwrap();
    let n: usize = args[2].parse().unwrap();
    let out = &args[3];
    let now_t = time::OffsetDateTime::now_utc();
    let key = tessera_core::keys::SigningKey::generate(tessera_core::keys::Algorithm::EdDSA, now_t)
        .unwrap();
    let ring = tessera_core::keys::Keyring::new(&[key], now_t).unwrap();
    let iss = format!("http://127.0.0.1:{port}");
    let tokens: Vec<String> = (0..n)
        .map(|_| {
            let now = now_t.unix_timestamp();
            let c = AccessClaims {
                iss: iss.clone(),
                sub: "0c9a3c9e-8b0e-4c41-9a56-4c2f7f0f3f11".into(),
                aud: iss.clone(),
                iat: now,
                exp: now + 600,
                jti: tessera_core::secret::random_token(16).unwrap(),
                sid: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                roles: vec![],
                nbf: None,
                client_id: None,
                scope: None,
            };
            tessera_core::jwt::mint(&ring, &c).unwrap()
        })
        .collect();
    std::fs::write(out, tokens.join("\n")).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[&iss]);
    validation.set_audience(&[&iss]);
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(serde_json::to_value(ring.current().jwk.as_ref().unwrap()).unwrap())
            .unwrap();
    let check = Arc::new(Check {
        key: DecodingKey::from_jwk(&jwk).unwrap(),
        validation,
    });
    let app = axum::Router::new()
        .route("/v1/me", get(me))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(check);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}
