//! Request limits, security headers, CORS and sign-in enumeration resistance.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let server = TestServer::start().await;
    let alice = server.signed_in("alice").await;
    let responses = vec![
        server
            .anon()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap(),
        server.anon().get(server.url("/nope")).send().await.unwrap(),
        server
            .anon()
            .get(server.url("/v1/me"))
            .send()
            .await
            .unwrap(),
        alice.get("/v1/me").await,
        server.token_request(&[("grant_type", "x")]).await,
    ];
    for r in responses {
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{}", r.url());
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(
            h["cache-control"], "no-store",
            "credential-bearing answers are never cached"
        );
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(
            h.get("strict-transport-security").is_none(),
            "HSTS only over TLS"
        );
        assert!(h.get("x-request-id").is_some());
    }
}

#[tokio::test]
async fn a_slow_upload_times_out_with_408() {
    let server = TestServer::with(Options {
        request_timeout: Some(Duration::from_millis(800)),
        ..Options::default()
    })
    .await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::spawn(async move {
        let _ = tx.send(Ok(b"{\"username\":".to_vec())).await;
        // ... and then nothing more for a long while.
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(tx);
    });
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let started = std::time::Instant::now();
    let r = server
        .anon()
        .post(server.url("/v1/users"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 408);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the server did not wait for the slow client"
    );
}

#[tokio::test]
async fn cors_is_granted_only_to_allowed_origins_with_credentials() {
    let server = TestServer::with(Options {
        allowed_origins: vec!["https://app.example.com".into()],
        ..Options::default()
    })
    .await;
    server.register("alice").await;
    let preflight = |origin: &'static str, path: &'static str| {
        server
            .anon()
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    for path in ["/v1/token", "/v1/token/revoke", "/v1/me"] {
        let r = preflight("https://app.example.com", path).await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-credentials"], "true");
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains("POST"), "{methods}");
        let headers = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("x-csrf-token"),
            "{headers}"
        );
    }
    let r = preflight("https://evil.example.com", "/v1/token")
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );

    // Actual cross-origin requests.
    let r = server
        .anon()
        .post(server.url("/v1/token"))
        .header("origin", "https://app.example.com")
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("retry-after"), "{exposed}");
    assert_eq!(r.headers()["vary"], "origin");
    let r = server
        .anon()
        .get(server.url("/v1/me"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    assert_eq!(r.headers()["vary"], "origin");
    // An origin that differs only in case or port is another origin.
    for near in ["https://APP.example.com", "https://app.example.com:8443"] {
        let r = preflight(near, "/v1/token").await.unwrap();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{near}"
        );
    }
    // Endpoints outside the CORS set never answer with CORS headers.
    let r = server
        .anon()
        .get(server.url("/v1/admin/audit"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_allowed_origins_nobody_gets_cors() {
    let server = TestServer::start().await;
    let r = server
        .anon()
        .request(reqwest::Method::OPTIONS, server.url("/v1/token"))
        .header("origin", &server.base)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn unknown_users_cost_the_same_argon2_work_as_wrong_passwords() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let core = server.state.core();
    let mut costs = Vec::new();
    let mut bodies = Vec::new();
    for (username, password) in [
        ("alice", "not the password"),
        ("nobody", "not the password"),
        ("x\u{202e}", "whatever!"),
    ] {
        let before = core.sign_in_guard.password_verifications();
        let r = server
            .anon()
            .post(server.url("/v1/session"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        costs.push(core.sign_in_guard.password_verifications() - before);
        bodies.push((r.status().as_u16(), r.text().await.unwrap()));
    }
    assert_eq!(
        costs,
        [1, 1, 1],
        "one Argon2id verification each, user or not"
    );
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}
