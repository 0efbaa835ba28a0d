//! OAuth client administration: registration (secrets shown once, stored
//! hashed), listing, removal ending the client's sessions, and the
//! redirect-URI rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{ADMIN_TOKEN, TestServer, problem};
use serde_json::{Value, json};
use tessera_core::store::Clients as _;

async fn register(server: &TestServer, body: Value) -> reqwest::Response {
    server
        .anon()
        .post(server.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn clients_are_registered_listed_and_removed() {
    let server = TestServer::start().await;
    let r = register(
        &server,
        json!({
            "name": "Photos",
            "redirect_uris": ["https://photos.example/cb", "http://127.0.0.1:9000/cb"],
            "public": false,
            "post_logout_redirect_uris": ["https://photos.example/bye"],
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let confidential: Value = r.json().await.unwrap();
    let secret = confidential["client_secret"].as_str().unwrap();
    assert!(secret.starts_with("cs_"), "{secret}");
    assert_eq!(
        confidential["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert!(confidential.get("id_token_signed_response_alg").is_none());

    let r = register(
        &server,
        json!({
            "name": "SPA",
            "redirect_uris": ["https://spa.example/cb", "com.example.app:/cb"],
            "public": true,
            "skip_consent": true,
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let public: Value = r.json().await.unwrap();
    assert!(public.get("client_secret").is_none());

    // The store keeps only the secret's hash.
    let id = uuid::Uuid::parse_str(confidential["client_id"].as_str().unwrap()).unwrap();
    let stored = server.store.client_by_id(id).await.unwrap().unwrap();
    let hash = stored.secret_hash.unwrap();
    assert_eq!(
        hash,
        tessera_core::secret::Secret::parse(tessera_core::secret::SecretKind::ClientSecret, secret)
            .unwrap()
            .hash()
    );

    let r = server
        .admin(reqwest::Method::GET, "/v1/admin/clients")
        .await;
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|c| c.get("client_secret").is_none()));

    let path = format!(
        "/v1/admin/clients/{}",
        confidential["client_id"].as_str().unwrap()
    );
    assert_eq!(
        server.admin(reqwest::Method::DELETE, &path).await.status(),
        204
    );
    problem(server.admin(reqwest::Method::DELETE, &path).await, 404).await;
    problem(
        server
            .admin(reqwest::Method::DELETE, "/v1/admin/clients/not-a-uuid")
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn only_admins_manage_clients() {
    let server = TestServer::start().await;
    let r = server
        .anon()
        .get(server.url("/v1/admin/clients"))
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
    let erin = server.signed_in("erin").await;
    problem(erin.get("/v1/admin/clients").await, 403).await;
    let r = server
        .anon()
        .post(server.url("/v1/admin/clients"))
        .json(&json!({"name": "x", "redirect_uris": ["https://x.example/"], "public": true}))
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
}

#[tokio::test]
async fn registrations_breaking_the_rules_are_refused() {
    let server = TestServer::start().await;
    for (body, why) in [
        (
            json!({"name": "x", "redirect_uris": [], "public": true}),
            "no redirect URI",
        ),
        (
            json!({"name": "", "redirect_uris": ["https://x.example/"], "public": true}),
            "empty name",
        ),
        (
            json!({"name": "x", "redirect_uris": ["/relative"], "public": true}),
            "relative",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://x.example/#f"], "public": true}),
            "fragment",
        ),
        (
            json!({"name": "x", "redirect_uris": ["http://x.example/cb"], "public": true}),
            "plain http",
        ),
        (
            json!({"name": "x", "redirect_uris": ["javascript:alert(1)"], "public": true}),
            "javascript",
        ),
        (
            json!({"name": "x", "redirect_uris": ["myapp:/cb"], "public": true}),
            "bare custom scheme",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://x.example/"], "public": true,
                   "post_logout_redirect_uris": ["http://evil.example/"]}),
            "post-logout http",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://x.example/"], "public": true,
                   "id_token_signed_response_alg": "none"}),
            "alg none",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://x.example/"], "public": true,
                   "id_token_signed_response_alg": "HS256"}),
            "alg HS256",
        ),
    ] {
        let r = register(&server, body).await;
        let p = problem(r, 400).await;
        assert_eq!(
            p["type"], "urn:tessera:problem:invalid-client-metadata",
            "{why}"
        );
    }
    // Malformed bodies are plain invalid requests.
    let r = register(&server, json!({"name": "x", "public": true})).await;
    problem(r, 400).await;
    let r = register(
        &server,
        json!({"name": "x", "redirect_uris": ["https://x.example/"], "public": true, "extra": 1}),
    )
    .await;
    problem(r, 400).await;
    // The signing key's algorithm (EdDSA by default) may be chosen.
    let r = register(
        &server,
        json!({"name": "x", "redirect_uris": ["https://x.example/"], "public": true,
               "id_token_signed_response_alg": "EdDSA"}),
    )
    .await;
    assert_eq!(r.status(), 201);
}
