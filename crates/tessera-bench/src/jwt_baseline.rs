//! The baseline a first-sight token is measured against: the smallest
//! axum server that checks Tessera's access tokens with the `jsonwebtoken`
//! crate on every request (no cache, no revocation, no session), as a
//! service verifying JWTs itself would. It answers `GET /v1/me` with the
//! token's subject, session and roles.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::json;
use tessera_core::Tessera;
use tessera_core::jwt::AccessClaims;

/// What every request is checked with.
struct Check {
    key: DecodingKey,
    validation: Validation,
}

/// A running baseline server, stopped when dropped.
pub(crate) struct JwtBaseline {
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwtBaseline {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwtBaseline {
    /// Serves on loopback, checking tokens with the public key `core`
    /// signs access tokens with now (taken from its JWKS, as a resource
    /// server would), its issuer and audience.
    pub(crate) async fn start(core: &Tessera) -> anyhow::Result<Self> {
        let current = core.signing_keys.keyring().current().clone();
        let published = current
            .jwk
            .as_ref()
            .context("the current key is not published (HS256): no baseline")?;
        let jwk: Jwk = serde_json::from_value(serde_json::to_value(published)?)
            .context("the JWK as jsonwebtoken reads it")?;
        let key = DecodingKey::from_jwk(&jwk).context("a decoding key from the JWK")?;
        let policy = &core.context.config().tokens;
        let mut validation = Validation::new(
            current
                .algorithm
                .as_str()
                .parse()
                .context("the key's algorithm")?,
        );
        validation.set_issuer(&[&policy.issuer]);
        validation.set_audience(&[&policy.audience]);
        let check = Arc::new(Check { key, validation });
        let app = Router::new().route("/v1/me", get(me)).with_state(check);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding loopback")?;
        let addr = listener.local_addr().context("local address")?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task })
    }
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
            let claims = data.claims;
            Json(json!({ "id": claims.sub, "session_id": claims.sid, "roles": claims.roles }))
                .into_response()
        }
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}
