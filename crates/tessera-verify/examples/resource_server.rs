//! A service behind Tessera: `GET /hello` answers the caller's user and
//! session ids to a valid bearer token, 401 without one or with a revoked
//! one, 503 while the revocation feed is stale; `GET /healthz` answers 200.
//!
//! ```text
//! TESSERA_URL=http://127.0.0.1:8080 TESSERA_AUDIENCE=http://127.0.0.1:8080 \
//! TESSERA_INTROSPECTION_SECRET=... LISTEN=127.0.0.1:9000 \
//!     cargo run -p tessera-verify --example resource_server
//! ```

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tessera_verify::{Verified, Verifier, VerifyLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("TESSERA_URL").map_err(|_| "set TESSERA_URL")?;
    let mut builder = Verifier::builder(&issuer);
    if let Ok(audience) = std::env::var("TESSERA_AUDIENCE") {
        builder = builder.audience(audience);
    }
    if let Ok(secret) = std::env::var("TESSERA_INTROSPECTION_SECRET") {
        builder = builder.introspection_secret(secret);
    }
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:9000".into());

    // The issuer may still be starting: try for a while before giving up.
    let mut attempts = 0;
    let verifier = loop {
        match builder.clone().build().await {
            Ok(verifier) => break verifier,
            Err(e) if attempts < 30 => {
                eprintln!("resource_server: waiting for {issuer}: {e}");
                attempts += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };

    let app = Router::new()
        .route("/hello", get(hello))
        .layer(VerifyLayer::new(verifier))
        // After the layer, so health checks need no token.
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("resource_server: listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn hello(Verified(claims): Verified) -> Json<Value> {
    Json(json!({ "sub": claims.sub, "sid": claims.sid }))
}
