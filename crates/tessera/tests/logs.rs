//! The server's log stream as an operator collects it: with
//! `log_format = "json"` one JSON object per line, each request's lines
//! naming it (request id, method, matched route), a closing line with
//! status and duration, audit events among them, and never a secret.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;

use common::{PASSWORD, Server};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "admin-token-for-the-log-test-0123456789abcdef";
const METRICS_TOKEN: &str = "metrics-token-for-the-log-test-0123456789ab";
const WRONG_PASSWORD: &str = "a wrong password that must not be logged";

#[tokio::test]
async fn json_logs_carry_the_request_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TESSERA_LOG_FORMAT", "json"),
            // Our own crates at their most talkative, every request's
            // closing line included (`tessera::request` at debug).
            (
                "TESSERA_LOG",
                "info,tessera=debug,tessera_core=debug,tessera_http=debug,tessera_server=debug",
            ),
            ("TESSERA_COOKIE__SECURE", "false"),
            ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN),
            ("TESSERA_METRICS_TOKEN", METRICS_TOKEN),
        ],
    );
    let client = reqwest::Client::new();
    let credentials = json!({ "username": "alice", "password": PASSWORD });

    let r = client
        .post(server.url("/v1/users"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(server.url("/v1/session"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    let cookie = pair.split_once('=').unwrap().1.to_owned();
    let r = client
        .get(server.url("/v1/me"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = client
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first: Value = r.json().await.unwrap();
    let r = client
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    let r = client
        .get(server.url("/v1/me"))
        .bearer_auth(second["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = client
        .get(server.url("/v1/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(server.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "alice", "password": WRONG_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let failed_request = r.headers()["x-request-id"].to_str().unwrap().to_owned();

    let (status, log) = server.terminate();
    assert!(status.success(), "{log:#?}");
    let text = log.join("\n");

    // Never a secret, whole or in the parts a JWT is made of.
    let access = second["access_token"].as_str().unwrap();
    let signature = access.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("the password", PASSWORD),
        ("a wrong password", WRONG_PASSWORD),
        ("the session cookie", cookie.as_str()),
        ("a refresh token", first["refresh_token"].as_str().unwrap()),
        ("a refresh token", second["refresh_token"].as_str().unwrap()),
        ("an access token", first["access_token"].as_str().unwrap()),
        ("an access token", access),
        ("an access token's signature", signature),
        ("the admin token", ADMIN_TOKEN),
        ("the metrics token", METRICS_TOKEN),
    ] {
        assert!(!text.contains(secret), "{what} is in the log:\n{text}");
    }

    // One JSON object per line; a request's lines name it.
    let lines: Vec<Value> = log
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request" || l["message"] == "request failed")
        .collect();
    // Nine requests, each closed by one line with its outcome.
    assert_eq!(finished.len(), 9, "{text}");
    for line in &finished {
        assert_eq!(line["target"], "tessera::request", "{line}");
        assert!(!line["request_id"].as_str().unwrap().is_empty(), "{line}");
        assert!(line["route"].as_str().unwrap().starts_with('/'), "{line}");
        assert!(line["method"].as_str().is_some(), "{line}");
        assert!(line["status"].as_u64().is_some(), "{line}");
        assert!(line["duration_ms"].as_f64().is_some(), "{line}");
    }
    let routes: BTreeSet<&str> = finished
        .iter()
        .map(|l| l["route"].as_str().unwrap())
        .collect();
    for route in [
        "/v1/users",
        "/v1/session",
        "/v1/me",
        "/v1/token",
        "/v1/admin/users",
        "/metrics",
    ] {
        assert!(routes.contains(route), "{routes:?}");
    }
    // Audit events are in the stream, inside the request that caused them.
    let audits: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "tessera::audit")
        .collect();
    for event in ["user.registered", "sign_in.succeeded", "sign_in.failed"] {
        assert!(
            audits.iter().any(|a| a["event"] == event),
            "no {event} audit line:\n{text}"
        );
    }
    let failed = audits
        .iter()
        .find(|a| a["event"] == "sign_in.failed")
        .unwrap();
    assert_eq!(failed["request_id"], failed_request.as_str(), "{failed}");
    assert_eq!(failed["route"], "/v1/session");
    assert_eq!(failed["method"], "POST");
    // Every request's lines name it: each id answered to a client is on
    // its closing line.
    let ids: BTreeSet<&str> = finished
        .iter()
        .map(|l| l["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 9, "{ids:?}");
    assert!(ids.contains(failed_request.as_str()));
}
