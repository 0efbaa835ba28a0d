//! Brute-force limits over real HTTP: per IP (blocked, growing), per
//! account (slowed, never disabled), shared by the cookie and token
//! endpoints, blind to whether the account exists.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::{Value, json};
use tessera_core::clock::ManualClock;
use tessera_core::rate_limit::RateLimitPolicy;
use time::{Duration, OffsetDateTime};

async fn limited_server(clock: &ManualClock) -> TestServer {
    let mut core = cheap_hashing();
    core.rate_limit = RateLimitPolicy {
        login_attempts: 5,
        window: Duration::minutes(15),
    };
    TestServer::with(Options {
        clock: Some(clock.clone()),
        core,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Options::default()
    })
    .await
}

async fn sign_in_from(
    server: &TestServer,
    ip: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    server
        .anon()
        .post(server.url("/v1/session"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

async fn token_from(
    server: &TestServer,
    ip: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    server
        .anon()
        .post(server.url("/v1/token"))
        .header("x-forwarded-for", ip)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &reqwest::Response) -> i64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_ip_over_the_limit_is_blocked_with_a_growing_block() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = limited_server(&clock).await;
    server.register("alice").await;
    // Five failures on five different accounts, across both endpoints.
    for (i, name) in ["a1", "a2", "a3", "a4", "a5"].iter().enumerate() {
        let r = if i % 2 == 0 {
            sign_in_from(&server, "203.0.113.7", name, "wrong password").await
        } else {
            token_from(&server, "203.0.113.7", name, "wrong password").await
        };
        assert!(r.status() == 401 || r.status() == 400, "{}", r.status());
    }
    // Now even the right password for another account is refused from that IP.
    let r = sign_in_from(&server, "203.0.113.7", "alice", PASSWORD).await;
    assert_eq!(retry_after(&r), 15 * 60);
    let body = problem(r, 429).await;
    assert_eq!(body["type"], "urn:tessera:problem:rate-limited");
    let r = token_from(&server, "203.0.113.7", "alice", PASSWORD).await;
    assert_eq!(retry_after(&r), 15 * 60);
    oauth_error(r, 429, "slow_down").await;
    // Other clients are not affected.
    assert_eq!(
        sign_in_from(&server, "198.51.100.1", "alice", PASSWORD)
            .await
            .status(),
        200
    );
    // After the block the IP may try again; the next strike blocks twice as long.
    clock.advance(Duration::minutes(15) + Duration::seconds(1));
    assert_eq!(
        sign_in_from(&server, "203.0.113.7", "alice", PASSWORD)
            .await
            .status(),
        200
    );
    for name in ["b1", "b2", "b3", "b4", "b5"] {
        sign_in_from(&server, "203.0.113.7", name, "wrong password").await;
    }
    let r = sign_in_from(&server, "203.0.113.7", "alice", PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        retry_after(&r),
        30 * 60,
        "the second block is twice as long"
    );
    let audit: Value = server
        .admin(reqwest::Method::GET, "/v1/admin/audit?limit=500")
        .await
        .json()
        .await
        .unwrap();
    let limited: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "sign_in.rate_limited" && e["detail"]["scope"] == "ip")
        .collect();
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0]["ip"], "203.0.113.7");
}

#[tokio::test]
async fn an_account_over_the_limit_is_slowed_never_disabled() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = limited_server(&clock).await;
    server.register("alice").await;
    // An attacker spreads guesses over many addresses.
    for i in 0..5 {
        let r = sign_in_from(&server, &format!("192.0.2.{i}"), "alice", "wrong password").await;
        assert_eq!(r.status(), 401);
    }
    // The owner, from their own address, must wait a moment: not be locked out.
    let r = sign_in_from(&server, "198.51.100.9", "alice", PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert_eq!(retry_after(&r), 1);
    clock.advance(Duration::seconds(2));
    assert_eq!(
        sign_in_from(&server, "198.51.100.9", "alice", PASSWORD)
            .await
            .status(),
        200
    );

    // Each further failure doubles the wait, up to a minute.
    let mut waits = Vec::new();
    for i in 0..12 {
        let ip = format!("192.0.2.{}", 100 + i);
        for _ in 0..2 {
            let r = sign_in_from(&server, &ip, "alice", "wrong password").await;
            if r.status() == 429 {
                let wait = retry_after(&r);
                clock.advance(Duration::seconds(wait));
            } else {
                assert_eq!(r.status(), 401);
                break;
            }
        }
    }
    for _ in 0..3 {
        let r = sign_in_from(&server, "192.0.2.250", "alice", "wrong password").await;
        if r.status() == 429 {
            waits.push(retry_after(&r));
            clock.advance(Duration::seconds(*waits.last().unwrap()));
        }
        let r = sign_in_from(&server, "192.0.2.250", "alice", "wrong password").await;
        assert_eq!(r.status(), 401);
    }
    assert!(waits.iter().all(|w| *w <= 60), "{waits:?}");
    assert!(waits.contains(&60), "the wait reaches its cap: {waits:?}");
    // Even now, the owner gets in after at most a minute.
    clock.advance(Duration::seconds(61));
    assert_eq!(
        sign_in_from(&server, "198.51.100.9", "alice", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn unknown_accounts_are_limited_exactly_like_known_ones() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = limited_server(&clock).await;
    server.register("alice").await;
    let mut sequences = Vec::new();
    for name in ["alice", "nobody-at-all"] {
        let mut statuses = Vec::new();
        for i in 0..7 {
            let r = sign_in_from(&server, &format!("192.0.2.{i}"), name, "wrong password").await;
            statuses.push((
                r.status().as_u16(),
                r.headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned()),
            ));
        }
        sequences.push(statuses);
        clock.advance(Duration::minutes(20));
    }
    assert_eq!(sequences[0], sequences[1]);
    assert!(sequences[0].iter().any(|(s, _)| *s == 429));
}

#[tokio::test]
async fn a_success_clears_the_account_not_the_ip() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = limited_server(&clock).await;
    server.register("alice").await;
    for _ in 0..4 {
        sign_in_from(&server, "203.0.113.8", "alice", "wrong password").await;
    }
    assert_eq!(
        sign_in_from(&server, "203.0.113.8", "alice", PASSWORD)
            .await
            .status(),
        200
    );
    // The account starts afresh; the address keeps its four failures.
    let r = sign_in_from(&server, "203.0.113.8", "someone", "wrong password").await;
    assert_eq!(r.status(), 401);
    let r = sign_in_from(&server, "203.0.113.8", "alice", PASSWORD).await;
    assert_eq!(
        r.status(),
        429,
        "the fifth failure from the address blocked it"
    );
}
