//! DNS rebinding: a hostile page whose name resolves to this server makes
//! the browser send requests with the attacker's `Host` and its own origin.
//! The server answers only for its own names, and never takes a request's
//! `Host` as proof that an `Origin` is its own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The status line of a raw HTTP/1.1 exchange.
async fn raw_status(server: &TestServer, request: String) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn requests_for_a_foreign_host_are_refused_before_any_handler() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let port = server.addr.port();
    let evil_host = format!("rebind.evil.example:{port}");
    let evil_origin = format!("http://{evil_host}");
    // The attacker's page signing in (or registering) through the victim's browser.
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .header("host", &evil_host)
        .header("origin", &evil_origin)
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let body = problem(r, 421).await;
    assert_eq!(body["type"], "urn:tessera:problem:unknown-host");
    let r = server
        .anon()
        .post(server.url("/v1/users"))
        .header("host", &evil_host)
        .header("origin", &evil_origin)
        .json(&json!({ "username": "mallory", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    problem(r, 421).await;
    // Reads too: the page could read every answer.
    for path in ["/v1/me", "/.well-known/openid-configuration", "/nope"] {
        let r = server
            .anon()
            .get(server.url(path))
            .header("host", &evil_host)
            .send()
            .await
            .unwrap();
        problem(r, 421).await;
    }
    let r = server
        .anon()
        .post(server.url("/v1/token"))
        .header("host", &evil_host)
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    // Health checks come by address from load balancers: answered anyway.
    for path in ["/healthz", "/readyz"] {
        let r = server
            .anon()
            .get(server.url(path))
            .header("host", "10.0.0.7:8080")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn the_host_line_and_the_request_target_must_both_be_ours() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    let absolute = format!(
        "GET http://rebind.evil.example:{port}/v1/me HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    assert!(raw_status(&server, absolute).await.contains(" 421 "));
    let no_host = "GET /v1/me HTTP/1.0\r\n\r\n".to_owned();
    assert!(raw_status(&server, no_host).await.contains(" 400 "));
    let ours =
        format!("GET /v1/me HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    assert!(raw_status(&server, ours).await.contains(" 401 "));
}

#[tokio::test]
async fn other_names_of_the_server_may_sign_in_foreign_origins_may_not() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let port = server.addr.port();
    // Our own loopback names: the server's pages under another name.
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .header("host", format!("localhost:{port}"))
        .header("origin", format!("http://localhost:{port}"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A foreign origin is refused even when it names the request's port.
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .header("origin", format!("http://rebind.evil.example:{port}"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let body = problem(r, 403).await;
    assert_eq!(body["type"], "urn:tessera:problem:foreign-origin");
}
