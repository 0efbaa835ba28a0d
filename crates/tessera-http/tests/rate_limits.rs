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
        ..RateLimitPolicy::default()
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

/// A server with the real Argon2id cost (so every verification is slow
/// enough for 40 requests to be in flight at once) and a limit of 10.
async fn slow_hashing_server() -> TestServer {
    let core = tessera_core::TesseraConfig {
        rate_limit: RateLimitPolicy {
            login_attempts: 10,
            window: Duration::minutes(15),
            ..RateLimitPolicy::default()
        },
        ..tessera_core::TesseraConfig::default()
    };
    TestServer::with(Options {
        core,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Options::default()
    })
    .await
}

/// Sends every request at once; the answers' statuses and Retry-After.
async fn all_at_once(requests: Vec<reqwest::RequestBuilder>) -> Vec<(u16, Option<i64>)> {
    let sent: Vec<_> = requests
        .into_iter()
        .map(|request| {
            tokio::spawn(async move {
                let r = request.send().await.unwrap();
                let wait = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
                (r.status().as_u16(), wait)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for answer in sent {
        answers.push(answer.await.unwrap());
    }
    answers
}

/// Checks that at most 10 of `answers` were verified (`verified` Argon2
/// runs, each answered `wrong`) and that every other one is a 429 with a
/// Retry-After.
fn at_most_the_limit_verified(answers: &[(u16, Option<i64>)], verified: u64, wrong: &[u16]) {
    assert!(verified <= 10, "{verified} verifications for a limit of 10");
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    let checked = answers.iter().filter(|(s, _)| wrong.contains(s)).count();
    assert_eq!(
        refused.len() + checked,
        answers.len(),
        "only wrong-password answers and 429s: {answers:?}"
    );
    assert_eq!(u64::try_from(checked).unwrap(), verified, "{answers:?}");
    assert!(
        refused.iter().all(|(_, wait)| wait.is_some_and(|w| w >= 1)),
        "every 429 says when to retry: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_from_one_address_are_limited_before_hashing() {
    let server = slow_hashing_server().await;
    server.register("alice").await;
    let before = server.state.core().sign_in_guard.password_verifications();
    // 40 at once, over both endpoints (they share the limits).
    let requests = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                server
                    .anon()
                    .post(server.url("/v1/session"))
                    .json(&json!({ "username": "alice", "password": "wrong password" }))
            } else {
                server.anon().post(server.url("/v1/token")).form(&[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "wrong password"),
                ])
            }
        })
        .collect();
    let answers = all_at_once(requests).await;
    let verified = server.state.core().sign_in_guard.password_verifications() - before;
    at_most_the_limit_verified(&answers, verified, &[401, 400]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_from_many_addresses_are_limited_per_account() {
    let server = slow_hashing_server().await;
    server.register("alice").await;
    let before = server.state.core().sign_in_guard.password_verifications();
    let requests = (0..40)
        .map(|i| {
            server
                .anon()
                .post(server.url("/v1/session"))
                .header("x-forwarded-for", format!("192.0.2.{i}"))
                .json(&json!({ "username": "alice", "password": "wrong password" }))
        })
        .collect();
    let answers = all_at_once(requests).await;
    let verified = server.state.core().sign_in_guard.password_verifications() - before;
    at_most_the_limit_verified(&answers, verified, &[401]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_current_passwords_are_limited_before_hashing() {
    let server = slow_hashing_server().await;
    let alice = server.signed_in("alice").await;
    let before = server.state.core().sign_in_guard.password_verifications();
    let requests = (0..40)
        .map(|_| {
            alice
                .unsafe_req(reqwest::Method::POST, "/v1/me/password")
                .json(&json!({
                    "current_password": "wrong password",
                    "new_password": "an entirely new passphrase",
                }))
        })
        .collect();
    let answers = all_at_once(requests).await;
    let verified = server.state.core().sign_in_guard.password_verifications() - before;
    at_most_the_limit_verified(&answers, verified, &[403]);
}

#[tokio::test]
async fn wrong_current_passwords_count_against_the_sign_in_limits() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = limited_server(&clock).await;
    // Signed in from 127.0.0.1 (the trusted proxy, no forwarded address).
    let alice = server.signed_in("alice").await;
    let change = |current: &'static str| {
        alice
            .unsafe_req(reqwest::Method::POST, "/v1/me/password")
            .json(&json!({
                "current_password": current,
                "new_password": "an entirely new passphrase",
            }))
            .send()
    };
    for _ in 0..5 {
        let r = change("wrong password").await.unwrap();
        problem(r, 403).await;
    }
    // Over the limit: even the right password waits.
    let r = change(PASSWORD).await.unwrap();
    assert!(retry_after(&r) >= 1);
    let body = problem(r, 429).await;
    assert_eq!(body["type"], "urn:tessera:problem:rate-limited");
    // The address is blocked for sign-in too, and the account is slowed.
    let r = sign_in_from(&server, "127.0.0.1", "alice", PASSWORD).await;
    assert_eq!(retry_after(&r), 15 * 60);
    problem(r, 429).await;
    let r = sign_in_from(&server, "198.51.100.9", "alice", PASSWORD).await;
    assert_eq!(r.status(), 429, "the account is slowed");
    clock.advance(Duration::seconds(2));
    assert_eq!(
        sign_in_from(&server, "198.51.100.9", "alice", PASSWORD)
            .await
            .status(),
        200
    );
    let audit: Value = server
        .admin(reqwest::Method::GET, "/v1/admin/audit?limit=500")
        .await
        .json()
        .await
        .unwrap();
    let events = audit["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["kind"] == "sign_in.rate_limited"
        && e["detail"]["scope"] == "ip"
        && e["ip"] == "127.0.0.1"));
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "sign_in.failed" && e["detail"]["during"] == "password_change")
            .count(),
        5
    );
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = limited_server(&clock).await;
    server.register("alice").await;
    // One host walking through its /64: each failure from a new address.
    for i in 1..=5 {
        let r = sign_in_from(
            &server,
            &format!("2001:db8:1:2::{i:x}"),
            &format!("u{i}"),
            "wrong password",
        )
        .await;
        assert_eq!(r.status(), 401);
    }
    let r = sign_in_from(
        &server,
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
        "alice",
        PASSWORD,
    )
    .await;
    assert_eq!(r.status(), 429, "the whole /64 is blocked");
    assert_eq!(
        sign_in_from(&server, "2001:db8:1:3::1", "alice", PASSWORD)
            .await
            .status(),
        200,
        "the next /64 is another client"
    );
    // An IPv4 client seen through an IPv6 socket is the same client.
    for i in 1..=5 {
        sign_in_from(
            &server,
            "::ffff:203.0.113.9",
            &format!("v{i}"),
            "wrong password",
        )
        .await;
    }
    let r = sign_in_from(&server, "203.0.113.9", "alice", PASSWORD).await;
    assert_eq!(r.status(), 429);
}

/// Registration answers per client address: 201 or 409 count alike.
async fn register_from(server: &TestServer, ip: &str, username: &str) -> reqwest::Response {
    server
        .anon()
        .post(server.url("/v1/users"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn registrations_are_limited_per_address() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    // The default limits (20 registrations per 15 minutes), cheap hashes.
    let server = TestServer::with(Options {
        clock: Some(clock.clone()),
        core: tessera_core::TesseraConfig {
            hash_cost: cheap_hashing().hash_cost,
            ..tessera_core::TesseraConfig::default()
        },
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Options::default()
    })
    .await;
    // Ten new accounts, then ten probes of taken names: twenty attempts.
    for i in 0..10 {
        assert_eq!(
            register_from(&server, "203.0.113.5", &format!("user{i}"))
                .await
                .status(),
            201
        );
    }
    for i in 0..10 {
        problem(
            register_from(&server, "203.0.113.5", &format!("user{i}")).await,
            409,
        )
        .await;
    }
    let r = register_from(&server, "203.0.113.5", "newcomer").await;
    let wait = retry_after(&r);
    assert!((1..=15 * 60).contains(&wait), "{wait}");
    let body = problem(r, 429).await;
    assert_eq!(body["type"], "urn:tessera:problem:rate-limited");
    // Probing is refused too, so the answer tells nothing about the name.
    problem(register_from(&server, "203.0.113.5", "user1").await, 429).await;
    assert_eq!(
        register_from(&server, "198.51.100.5", "newcomer")
            .await
            .status(),
        201,
        "other addresses are not affected"
    );
    clock.advance(Duration::seconds(wait));
    assert_eq!(
        register_from(&server, "203.0.113.5", "latecomer")
            .await
            .status(),
        201,
        "a new window"
    );
}

/// A sign-in dropped while its password waits to be checked (here the
/// request times out; a client closing its connection does the same) gives
/// its reserved slot back: ten closed tabs must not lock an address out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_dropped_while_waiting_gives_its_slot_back() {
    use tessera_core::store::Counters;

    let core = tessera_core::TesseraConfig {
        rate_limit: RateLimitPolicy {
            login_attempts: 10,
            window: Duration::minutes(15),
            ..RateLimitPolicy::default()
        },
        ..tessera_core::TesseraConfig::default()
    };
    let server = TestServer::with(Options {
        core,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        // Shorter than the wait of most of the burst below for the
        // hashing pool (real Argon2id cost).
        request_timeout: Some(std::time::Duration::from_millis(150)),
        ..Options::default()
    })
    .await;
    let names: Vec<String> = (0..8).map(|i| format!("tab{i}")).collect();
    for name in &names {
        // Made directly: over HTTP, the short timeout would cut these off.
        server
            .state
            .core()
            .accounts
            .create_user(
                name,
                zeroize::Zeroizing::new("correct horse battery staple".to_owned()),
                vec![],
                &tessera_core::client::ClientInfo::new(None, None),
            )
            .await
            .unwrap();
    }
    let requests = (0..16)
        .map(|i| {
            server
                .anon()
                .post(server.url("/v1/session"))
                .header("x-forwarded-for", "10.9.9.9")
                .json(&json!({
                    "username": names[i % names.len()],
                    "password": "correct horse battery staple",
                }))
        })
        .collect();
    let answers = all_at_once(requests).await;
    assert!(
        answers.iter().any(|(status, _)| *status == 408),
        "no sign-in was cut off, so nothing was tested: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|(status, _)| [200, 408, 429].contains(status)),
        "{answers:?}"
    );
    // Every attempt had the right password: once the dropped ones have
    // given their slots back, nothing is counted against the address.
    // (`hit` counts one more and answers the count with it.)
    // The dropped ones give back in the background: give them time.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (count, _) = server
        .store
        .hit(
            "ip:10.9.9.9",
            Duration::minutes(15),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(
        count - 1,
        0,
        "slots still held by dropped sign-ins: {answers:?}"
    );
}
