//! `GET /metrics`: who may read it, and what it says, read back with an
//! independent parser of the Prometheus text format (the official Python
//! client's, `scripts/parse_metrics.py`) after real requests that must move
//! each counter by exactly what they did.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};
use time::Duration;

/// Every sample of a scrape: `name{label="value",...}` (labels sorted) → value.
type Samples = BTreeMap<String, f64>;

fn parser() -> std::ffi::OsString {
    std::env::var_os("PROMETHEUS_PARSER_PYTHON").unwrap_or_else(|| {
        panic!(
            "PROMETHEUS_PARSER_PYTHON is not set: point it at a python with prometheus_client \
             (pip install prometheus_client), or run scripts/test, which sets it"
        )
    })
}

/// Parses `text` with prometheus_client; the families as it read them.
fn parse(text: &str) -> Vec<Value> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/parse_metrics.py"
    );
    let mut child = Command::new(parser())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    parsed["families"].as_array().unwrap().clone()
}

fn samples(families: &[Value]) -> Samples {
    let mut all = Samples::new();
    for family in families {
        for sample in family["samples"].as_array().unwrap() {
            let labels = sample["labels"].as_object().unwrap();
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            let value = sample["value"].as_f64().unwrap_or(f64::INFINITY);
            all.insert(
                format!(
                    "{}{{{}}}",
                    sample["name"].as_str().unwrap(),
                    labels.join(",")
                ),
                value,
            );
        }
    }
    all
}

async fn scrape(server: &TestServer) -> (Vec<Value>, Samples) {
    let r = server
        .anon()
        .get(server.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let families = parse(&r.text().await.unwrap());
    let samples = samples(&families);
    (families, samples)
}

/// How much `key` moved between two scrapes (a series not yet there is 0).
fn moved(before: &Samples, after: &Samples, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_need_the_metrics_or_the_admin_token() {
    let server = TestServer::start().await;
    let get = |token: Option<&'static str>| {
        let mut request = server.anon().get(server.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let r = get(None).await.unwrap();
    problem(r, 401).await;
    let r = get(Some("wrong-token-0123456789abcdef0123456789ab"))
        .await
        .unwrap();
    problem(r, 401).await;
    // The introspection secret is for verifiers, not for metrics.
    let r = get(Some(INTROSPECTION_SECRET)).await.unwrap();
    problem(r, 401).await;
    // A prefix of the right token is a wrong token.
    let r = get(Some(&METRICS_TOKEN[..20])).await.unwrap();
    problem(r, 401).await;
    assert_eq!(get(Some(METRICS_TOKEN)).await.unwrap().status(), 200);
    assert_eq!(get(Some(ADMIN_TOKEN)).await.unwrap().status(), 200);
    // A signed-in user, even an admin by cookie, is not a scraper.
    let user = server.signed_in("scraper").await;
    assert_eq!(user.get("/metrics").await.status(), 401);
    // Any Host: Prometheus scrapes each node by address.
    let r = server
        .anon()
        .get(server.url("/metrics"))
        .header("host", "10.1.2.3:9090")
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
#[ignore = "needs prometheus_client: set PROMETHEUS_PARSER_PYTHON (scripts/test does)"]
async fn counters_move_by_exactly_what_requests_did() {
    let clock = tessera_core::clock::ManualClock::new(time::OffsetDateTime::now_utc());
    let server = TestServer::with(Options {
        clock: Some(clock.clone()),
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    server.register("alice").await;
    let (_, before) = scrape(&server).await;

    // A cookie sign-in, then a wrong password.
    let browser = server.sign_in("alice").await;
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "alice", "password": "not the password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A token sign-in, a refresh, the replaced token again within the grace
    // window, and again after it: reuse, the session revoked.
    let tokens = server.tokens("alice").await;
    let r = server.refresh(&tokens.refresh).await;
    assert_eq!(r.status(), 200);
    clock.advance(Duration::seconds(2));
    assert_eq!(server.refresh(&tokens.refresh).await.status(), 200);
    clock.advance(Duration::seconds(11));
    oauth_error(server.refresh(&tokens.refresh).await, 400, "invalid_grant").await;
    // A second token session revoked by RFC 7009, and the browser signs out.
    let other = server.tokens("alice").await;
    let r = server
        .anon()
        .post(server.url("/v1/token/revoke"))
        .form(&[("token", other.refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(browser.delete("/v1/session").await.status(), 204);
    // The browser's cookie was cleared: it is signed out.
    assert_eq!(browser.get("/v1/me").await.status(), 401);

    let (families, after) = scrape(&server).await;
    let expect = [
        ("tessera_sign_ins_total{outcome=ok}", 3.0),
        ("tessera_sign_ins_total{outcome=wrong_credentials}", 1.0),
        ("tessera_sign_ins_total{outcome=throttled}", 0.0),
        ("tessera_sign_ins_total{outcome=disabled}", 0.0),
        ("tessera_sessions_created_total{kind=cookie}", 1.0),
        ("tessera_sessions_created_total{kind=token}", 2.0),
        ("tessera_refreshes_total{outcome=ok}", 1.0),
        ("tessera_refreshes_total{outcome=grace_reuse}", 1.0),
        ("tessera_refreshes_total{outcome=reuse_detected}", 1.0),
        ("tessera_refreshes_total{outcome=invalid}", 0.0),
        ("tessera_revocations_total{reason=refresh_reused}", 1.0),
        ("tessera_revocations_total{reason=token_revocation}", 1.0),
        ("tessera_revocations_total{reason=signed_out}", 1.0),
        (
            "tessera_http_requests_total{method=POST,route=/v1/session,status=200}",
            1.0,
        ),
        (
            "tessera_http_requests_total{method=POST,route=/v1/session,status=401}",
            1.0,
        ),
        (
            "tessera_http_requests_total{method=POST,route=/v1/token,status=200}",
            4.0,
        ),
        (
            "tessera_http_requests_total{method=POST,route=/v1/token,status=400}",
            1.0,
        ),
        (
            "tessera_http_request_duration_seconds_count{method=POST,route=/v1/token}",
            5.0,
        ),
        // The sign-out's cookie check (not yet cached: a sign-in does not
        // fill the cache); the cleared cookie is not sent again.
        ("tessera_session_cache_lookups_total{result=miss}", 1.0),
        ("tessera_session_cache_lookups_total{result=hit}", 0.0),
        // Each scrape is counted once it is answered: the first one only.
        (
            "tessera_http_requests_total{method=GET,route=/metrics,status=200}",
            1.0,
        ),
    ];
    for (key, delta) in expect {
        assert_eq!(moved(&before, &after, key), delta, "{key}");
    }
    // Three sessions ended: the set holds at least their ids.
    assert!(after["tessera_revocation_set_size{}"] >= 3.0);
    assert!(after["tessera_revocation_sync_age_seconds{}"] >= 0.0);
    assert_eq!(after["tessera_password_hash_queue_depth{}"], 0.0);
    // Four password checks queued for a hashing thread, and none waited long.
    assert_eq!(
        moved(
            &before,
            &after,
            "tessera_password_hash_wait_seconds_count{}"
        ),
        4.0
    );
    assert!(
        after["tessera_store_operation_duration_seconds_count{operation=rotate_refresh}"] >= 3.0
    );

    // The shape: every family prefixed, of a known type; histograms have
    // their +Inf bucket equal to their count; no label value is an id.
    for family in &families {
        let name = family["name"].as_str().unwrap();
        assert!(name.starts_with("tessera_"), "{name}");
        assert!(
            ["counter", "gauge", "histogram"].contains(&family["type"].as_str().unwrap()),
            "{family}"
        );
    }
    for (key, value) in &after {
        if let Some(rest) = key.strip_prefix("tessera_http_request_duration_seconds_count{") {
            let inf = format!("tessera_http_request_duration_seconds_bucket{{le=+Inf,{rest}");
            assert_eq!(after.get(&inf), Some(value), "{key}");
        }
        for session in [&tokens.session_id, &other.session_id, &browser.session_id] {
            assert!(
                !key.contains(session.as_str()),
                "a session id became a label: {key}"
            );
        }
    }
}

#[tokio::test]
#[ignore = "needs prometheus_client: set PROMETHEUS_PARSER_PYTHON (scripts/test does)"]
async fn the_verified_token_cache_is_counted_and_sized() {
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    server.register("alice").await;
    let first = server.tokens("alice").await;
    let second = server.tokens("alice").await;
    let (_, before) = scrape(&server).await;
    // Each token checked once (a miss), then served from the cache (hits).
    for tokens in [&first, &second] {
        for _ in 0..3 {
            assert_eq!(tokens.me().await.status(), 200);
        }
    }
    let (_, after) = scrape(&server).await;
    for (key, delta) in [
        (
            "tessera_verified_token_cache_lookups_total{result=miss}",
            2.0,
        ),
        (
            "tessera_verified_token_cache_lookups_total{result=hit}",
            4.0,
        ),
        ("tessera_verified_token_cache_tokens{}", 2.0),
    ] {
        assert_eq!(moved(&before, &after, key), delta, "{key}");
    }
    assert_eq!(after["tessera_verified_token_cache_tokens{}"], 2.0);
}

#[tokio::test]
async fn request_series_are_bounded_whatever_the_client_sends() {
    let server = TestServer::start().await;
    let client = server.anon();
    for i in 0..20 {
        client
            .get(server.url(&format!("/no/such/path/{i}")))
            .send()
            .await
            .unwrap();
        client
            .request(
                reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap(),
                server.url("/v1/me"),
            )
            .send()
            .await
            .unwrap();
        client
            .delete(server.url(&format!("/v1/me/sessions/id{i}")))
            .send()
            .await
            .unwrap();
    }
    let text = server.exposition().await;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tessera_http_requests_total{"))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("route=\"unmatched\"")
            && l.contains("method=\"GET\"")
            && l.contains("status=\"404\"")
            && l.ends_with(" 20")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("route=\"/v1/me\"")
            && l.contains("method=\"other\"")
            && l.ends_with(" 20")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("route=\"/v1/me/sessions/{id}\"") && l.ends_with(" 20")),
        "{lines:#?}"
    );
    assert!(!text.contains("/no/such"), "a path became a label");
    assert!(!text.contains("BREW"), "a method became a label");
    assert!(!text.contains("id7"), "an id became a label");
}

/// The series names in a PromQL expression.
fn series_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tessera_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn the_dashboard_names_only_series_the_server_exports() {
    let dashboard: Value =
        serde_json::from_str(include_str!("../../../docs/grafana-dashboard.json"))
            .expect("docs/grafana-dashboard.json is valid JSON");
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    // Enough traffic for every series to exist.
    let browser = server.signed_in("dashboard").await;
    assert_eq!(browser.get("/v1/me").await.status(), 200);
    assert_eq!(browser.get("/v1/me").await.status(), 200);
    let tokens = server.tokens("dashboard").await;
    assert_eq!(server.refresh(&tokens.refresh).await.status(), 200);
    assert_eq!(tokens.me().await.status(), 200);
    assert_eq!(tokens.me().await.status(), 200);
    assert_eq!(browser.delete("/v1/session").await.status(), 204);
    // As `tessera serve` does when Redis is configured.
    server
        .state
        .core()
        .context
        .metrics()
        .redis_availability()
        .set(1.0);
    // A store that fails.
    server.store.close().await;
    let r = server
        .anon()
        .post(server.url("/v1/users"))
        .json(&json!({ "username": "bob", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    let text = server.exposition().await;
    let exported: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut named = std::collections::BTreeSet::new();
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{panel}");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = series_in(expr);
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                assert!(
                    exported.contains(name.as_str()),
                    "{name} (in {expr}) is not exported: {exported:#?}"
                );
                named.insert(name);
            }
        }
    }
    // And the dashboard shows every family the server exports.
    for name in &exported {
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            named.iter().any(|n| n.starts_with(family)),
            "{name} is on no panel"
        );
    }
}

#[tokio::test]
async fn throttled_and_disabled_sign_ins_are_told_apart() {
    let mut core = cheap_hashing();
    core.rate_limit.login_attempts = 2;
    let server = TestServer::with(Options {
        core,
        ..Options::default()
    })
    .await;
    server.register("carol").await;
    let sign_in = |password: &'static str| {
        server
            .anon()
            .post(server.url("/v1/session"))
            .json(&json!({ "username": "carol", "password": password }))
            .send()
    };
    assert_eq!(sign_in("wrong password 1").await.unwrap().status(), 401);
    assert_eq!(sign_in("wrong password 2").await.unwrap().status(), 401);
    // The address is blocked now: refused before any password work.
    assert_eq!(sign_in(PASSWORD).await.unwrap().status(), 429);
    let text = server.exposition().await;
    assert_eq!(
        sample(
            &text,
            "tessera_sign_ins_total{outcome=\"wrong_credentials\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(&text, "tessera_sign_ins_total{outcome=\"throttled\"}"),
        1.0
    );
    assert_eq!(sample(&text, "tessera_sign_ins_total{outcome=\"ok\"}"), 0.0);

    // On a server of its own (no block): the right password of a disabled account.
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    let id2 = server.register("dave").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = server
        .admin(
            reqwest::Method::POST,
            &format!("/v1/admin/users/{id2}/disable"),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "dave", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let text = server.exposition().await;
    assert_eq!(
        sample(&text, "tessera_sign_ins_total{outcome=\"disabled\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tessera_sign_ins_total{outcome=\"wrong_credentials\"}"
        ),
        0.0
    );
}

#[tokio::test]
async fn second_factor_sign_ins_are_counted_by_outcome() {
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    let erin = server.signed_in("erin").await;
    let enrolment: serde_json::Value = erin
        .unsafe_req(reqwest::Method::POST, "/v1/me/mfa/totp")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret =
        tessera_core::totp::TotpSecret::from_base32(enrolment["secret"].as_str().unwrap()).unwrap();
    let code_at =
        |t: time::OffsetDateTime| format!("{:06}", secret.code(tessera_core::totp::step_at(t)));
    let now = time::OffsetDateTime::now_utc();
    let r = erin
        .unsafe_req(reqwest::Method::POST, "/v1/me/mfa/totp/confirm")
        .json(&json!({ "code": code_at(now) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "erin", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let token = common::problem(r, 401).await["mfa_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_step = |code: String| {
        server
            .anon()
            .post(server.url("/v1/session/mfa"))
            .json(&json!({ "mfa_token": token, "code": code }))
            .send()
    };
    let next = code_at(now + time::Duration::seconds(30));
    let wrong = if next == "000000" { "111111" } else { "000000" };
    assert_eq!(second_step(wrong.into()).await.unwrap().status(), 401);
    assert_eq!(second_step(next).await.unwrap().status(), 200);
    let text = server.exposition().await;
    // The first sign-in (before TOTP) and the finished second step.
    assert_eq!(sample(&text, "tessera_sign_ins_total{outcome=\"ok\"}"), 2.0);
    assert_eq!(
        sample(&text, "tessera_sign_ins_total{outcome=\"mfa_required\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "tessera_sign_ins_total{outcome=\"wrong_code\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tessera_sign_ins_total{outcome=\"wrong_credentials\"}"
        ),
        0.0
    );
}
