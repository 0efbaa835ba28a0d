//! Accounts, bad input, probes and the audit log, over real HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn registration_answers_201_with_the_new_user() {
    let server = TestServer::start().await;
    let r = server
        .anon()
        .post(server.url("/v1/users"))
        .json(&json!({ "username": "Alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["username"], "Alice");
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    assert!(
        time::OffsetDateTime::parse(
            body["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
}

#[tokio::test]
async fn registration_accepts_forms() {
    let server = TestServer::start().await;
    let r = server
        .anon()
        .post(server.url("/v1/users"))
        .form(&[("username", "bob"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn usernames_are_unique_after_normalisation() {
    let server = TestServer::start().await;
    server.register("Alice").await;
    for variant in ["Alice", "alice", "ALICE", "Ａｌｉｃｅ"] {
        let r = server
            .anon()
            .post(server.url("/v1/users"))
            .json(&json!({ "username": variant, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        let body = problem(r, 409).await;
        assert_eq!(
            body["type"], "urn:tessera:problem:username-taken",
            "{variant}"
        );
    }
    // Decomposed and composed accents are one name too.
    server.register("Jos\u{e9}").await;
    let r = server
        .anon()
        .post(server.url("/v1/users"))
        .json(&json!({ "username": "JOSE\u{301}", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    problem(r, 409).await;
}

#[tokio::test]
async fn invalid_usernames_are_refused_with_a_reason() {
    let server = TestServer::start().await;
    let long = "a".repeat(65);
    for name in [
        "",
        " ",
        " padded",
        "nul\u{0}byte",
        "evil\u{202e}txt.exe",
        "zero\u{200b}width",
        long.as_str(),
    ] {
        let r = server
            .anon()
            .post(server.url("/v1/users"))
            .json(&json!({ "username": name, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        let body = problem(r, 400).await;
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{name:?}");
    }
    server.register(&"é".repeat(64)).await;
}

#[tokio::test]
async fn weak_and_overlong_passwords_are_refused_with_a_reason() {
    let server = TestServer::start().await;
    let cases = [
        ("short", "at least 8"),
        ("password123", "too common"),
        ("zzzzzzzzzzzz", "too common"),
        ("carol-the-user", "not be the username"),
    ];
    for (password, reason) in cases {
        let r = server
            .anon()
            .post(server.url("/v1/users"))
            .json(&json!({ "username": "carol-the-user", "password": password }))
            .send()
            .await
            .unwrap();
        let body = problem(r, 400).await;
        assert_eq!(body["type"], "urn:tessera:problem:weak-password");
        assert!(body["detail"].as_str().unwrap().contains(reason), "{body}");
    }
    let too_long = "x1".repeat(512) + "y";
    let r = server
        .anon()
        .post(server.url("/v1/users"))
        .json(&json!({ "username": "dave", "password": too_long }))
        .send()
        .await
        .unwrap();
    let body = problem(r, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("at most 1024"));
    // Exactly 1024 characters (2048 bytes) is allowed.
    let r = server
        .anon()
        .post(server.url("/v1/users"))
        .json(&json!({ "username": "dave", "password": "é1".repeat(512) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn bad_bodies_get_400_problems() {
    let server = TestServer::start().await;
    let json = Some("application/json");
    let nested = "[".repeat(10_000) + &"]".repeat(10_000);
    let cases: Vec<(Option<&str>, Vec<u8>)> = vec![
        (json, b"".to_vec()),
        (None, b"".to_vec()),
        (json, b"{".to_vec()),
        (json, b"{\"username\": \"a\", ".to_vec()),
        (json, b"not json".to_vec()),
        (json, b"[]".to_vec()),
        (json, b"null".to_vec()),
        (json, b"\"string\"".to_vec()),
        (
            json,
            br#"{"username": 5, "password": "correct horse"}"#.to_vec(),
        ),
        (json, br#"{"username": "x"}"#.to_vec()),
        (
            json,
            br#"{"username": ["a"], "password": {"b": 1}}"#.to_vec(),
        ),
        (
            json,
            br#"{"username": "nul\u0000", "password": "correct horse"}"#.to_vec(),
        ),
        (
            json,
            br#"{"username": "ok", "password": "correct\u0000horse"}"#.to_vec(),
        ),
        (
            json,
            b"{\"username\": \"\xff\xfe\", \"password\": \"correct horse\"}".to_vec(),
        ),
        (json, b"\xef\xbb\xbf{}".to_vec()),
        (json, nested.into_bytes()),
        (
            Some("application/x-www-form-urlencoded"),
            b"username=%ff&password=x".to_vec(),
        ),
        (
            Some("application/x-www-form-urlencoded"),
            b"username=a&username=b&password=x".to_vec(),
        ),
        (
            Some("application/x-www-form-urlencoded"),
            b"username=a%00&password=correct+horse".to_vec(),
        ),
        (
            Some("application/x-www-form-urlencoded"),
            b"username=a&password=%zz".to_vec(),
        ),
    ];
    for (content_type, body) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        let r = server.post_raw("/v1/users", content_type, body).await;
        assert_eq!(r.status(), 400, "{content_type:?} {shown:?}");
        problem(r, 400).await;
    }
}

#[tokio::test]
async fn unknown_media_types_get_415() {
    let server = TestServer::start().await;
    for ct in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/xml",
    ] {
        let r = server
            .post_raw(
                "/v1/users",
                Some(ct),
                br#"{"username":"a","password":"b"}"#.to_vec(),
            )
            .await;
        problem(r, 415).await;
    }
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let server = TestServer::start().await;
    let big = json!({ "username": "a", "password": "x".repeat(70 * 1024) }).to_string();
    let r = server
        .post_raw(
            "/v1/users",
            Some("application/json"),
            big.clone().into_bytes(),
        )
        .await;
    problem(r, 413).await;
    // Without a Content-Length (chunked), the limit still holds.
    let stream = futures_util_stream(big.into_bytes());
    let r = server
        .anon()
        .post(server.url("/v1/users"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    problem(r, 413).await;
    // Form posts too (they pass the CSRF form reader first).
    let form = format!("username=a&password={}", "x".repeat(70 * 1024));
    let r = server
        .post_raw(
            "/v1/users",
            Some("application/x-www-form-urlencoded"),
            form.into_bytes(),
        )
        .await;
    problem(r, 413).await;
}

fn futures_util_stream(
    bytes: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
    tokio_stream::iter(chunks)
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let server = TestServer::start().await;
    let r = server.anon().get(server.url("/nope")).send().await.unwrap();
    problem(r, 404).await;
    let r = server
        .anon()
        .get(server.url("/v1/users"))
        .send()
        .await
        .unwrap();
    problem(r, 405).await;
    let r = server
        .anon()
        .put(server.url("/v1/session"))
        .send()
        .await
        .unwrap();
    problem(r, 405).await;
}

#[tokio::test]
async fn me_needs_a_caller() {
    let server = TestServer::start().await;
    let r = server
        .anon()
        .get(server.url("/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"tessera\"");
    problem(r, 401).await;
    let r = server
        .anon()
        .get(server.url("/v1/me"))
        .header("authorization", "Bearer not-a-token")
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
}

#[tokio::test]
async fn probes_answer() {
    let server = TestServer::start().await;
    let r = server
        .anon()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = server
        .anon()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Closing the store makes the server not ready, and says so.
    server.store.close().await;
    let r = server
        .anon()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    problem(r, 503).await;
    let r = server
        .anon()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_draining_node_is_not_ready_and_closes_connections_but_still_serves() {
    let server = TestServer::start().await;
    server.register("dora").await;
    let dora = server.sign_in("dora").await;
    let r = server
        .anon()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("connection").is_none());
    server.state.http().draining.start();
    let r = server
        .anon()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["connection"], "close");
    let body = problem(r, 503).await;
    assert!(
        body["detail"].as_str().unwrap().contains("shutting down"),
        "{body}"
    );
    // Requests are still answered in full, each the last on its connection.
    let r = dora.get("/v1/me").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["connection"], "close");
}

#[tokio::test]
async fn audit_log_records_sign_ups_and_sign_ins_without_secrets() {
    let server = TestServer::start().await;
    server.register("erin").await;
    let erin = server.sign_in("erin").await;
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "erin", "password": "wrong password!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "nobody", "password": "wrong password!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // No admin credential, a wrong one, and a non-admin user are refused.
    let r = server
        .anon()
        .get(server.url("/v1/admin/audit"))
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
    let r = server
        .anon()
        .get(server.url("/v1/admin/audit"))
        .bearer_auth("wrong-token-wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
    let r = erin.get("/v1/admin/audit").await;
    problem(r, 403).await;

    let r = server.admin(reqwest::Method::GET, "/v1/admin/audit").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(PASSWORD) && !text.contains("wrong password!"));
    assert!(!text.contains(&erin.cookie));
    let page: Value = serde_json::from_str(&text).unwrap();
    let kinds: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "sign_in.failed",
            "sign_in.failed",
            "sign_in.succeeded",
            "user.registered"
        ]
    );
    let events = page["events"].as_array().unwrap();
    assert_eq!(events[0]["detail"]["reason"], "unknown_user");
    assert_eq!(events[1]["detail"]["reason"], "wrong_password");
    assert_eq!(events[3]["ip"], "127.0.0.1");
    assert!(events[3]["user_id"].is_string());

    // Paging: two at a time, older pages by `before`.
    let r = server
        .admin(reqwest::Method::GET, "/v1/admin/audit?limit=2")
        .await;
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let before = first["next_before"].as_i64().unwrap();
    let r = server
        .admin(
            reqwest::Method::GET,
            &format!("/v1/admin/audit?limit=2&before={before}"),
        )
        .await;
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["events"][1]["kind"], "user.registered");
    for bad in ["limit=0", "limit=100000", "limit=x", "before=abc"] {
        let r = server
            .admin(reqwest::Method::GET, &format!("/v1/admin/audit?{bad}"))
            .await;
        problem(r, 400).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sign_ups_does_not_stall_other_requests() {
    let server = TestServer::with(Options {
        core: many_registrations(),
        ..Options::default()
    })
    .await;
    let burst: Vec<_> = (0..48)
        .map(|i| {
            let client = server.anon();
            let url = server.url("/v1/users");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({ "username": format!("burst{i}"), "password": PASSWORD }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    // While 48 Argon2id hashes queue on the bounded pool, probes are answered
    // at once: every one of them returns before the burst has finished.
    for _ in 0..3 {
        let r = server
            .anon()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let unfinished = burst.iter().filter(|h| !h.is_finished()).count();
    assert!(
        unfinished > 0,
        "the burst finished before the probes: the test proves nothing"
    );
    for handle in burst {
        let status = handle.await.unwrap();
        assert!(status == 201 || status == 503, "{status}");
    }
}
