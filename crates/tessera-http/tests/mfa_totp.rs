//! Two-step verification with TOTP, as a person (and an attacker) would
//! use it over HTTP: enrolment and confirmation, sign-in on both carriers
//! with a code or a recovery code, and the hostile cases: replayed codes,
//! codes of other steps, guessing past the limits, tokens from elsewhere,
//! expired, reused or malformed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{CookieClient, Options, PASSWORD, TestServer, jwt_part, problem, set_cookie};
use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::clock::{Clock, ManualClock};
use tessera_core::rate_limit::RateLimitPolicy;
use tessera_core::totp::{TotpSecret, step_at};
use time::{Duration, OffsetDateTime};

/// A server on a manual clock, with cheap hashing and `attempts` failures
/// allowed per address and account.
async fn server(attempts: u32) -> (TestServer, ManualClock) {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let mut core = common::cheap_hashing();
    core.rate_limit = RateLimitPolicy {
        login_attempts: attempts,
        window: Duration::minutes(15),
        registrations: 1000,
    };
    let server = TestServer::with(Options {
        clock: Some(clock.clone()),
        core,
        // Requests may say which address they come from (X-Forwarded-For),
        // to play clients on other addresses.
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Options::default()
    })
    .await;
    (server, clock)
}

/// The code an authenticator app with `secret` shows at `at`.
fn code_at(secret: &str, at: OffsetDateTime) -> String {
    let secret = TotpSecret::from_base32(secret).unwrap();
    format!("{:06}", secret.code(step_at(at)))
}

/// Moves the clock to the start of the next 30-second step.
fn next_step(clock: &ManualClock) {
    let now = clock.now();
    let into = now.unix_timestamp().rem_euclid(30);
    clock.advance(Duration::seconds(30 - into));
}

/// Enrols and confirms TOTP for the signed-in `user`: the secret and the
/// recovery codes.
async fn enable_totp(user: &CookieClient, clock: &ManualClock) -> (String, Vec<String>) {
    let r = user
        .unsafe_req(Method::POST, "/v1/me/mfa/totp")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap().to_owned();
    let r = user
        .unsafe_req(Method::POST, "/v1/me/mfa/totp/confirm")
        .json(&json!({ "code": code_at(&secret, clock.now()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// A fresh browser-like client (cookie jar) on `ip`.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// `POST /v1/session` with the password: the `mfa_token` of the
/// `mfa-required` answer.
async fn password_step(
    server: &TestServer,
    client: &reqwest::Client,
    name: &str,
    ip: &str,
) -> String {
    let r = client
        .post(server.url("/v1/session"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "username": name, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(
        set_cookie(r.headers()).is_none(),
        "no cookie before the second factor"
    );
    let body = problem(r, 401).await;
    assert_eq!(body["type"], "urn:tessera:problem:mfa-required");
    let token = body["mfa_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("mt_"));
    token
}

async fn code_step(
    server: &TestServer,
    client: &reqwest::Client,
    token: &str,
    code: &str,
    ip: &str,
) -> reqwest::Response {
    client
        .post(server.url("/v1/session/mfa"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "mfa_token": token, "code": code }))
        .send()
        .await
        .unwrap()
}

const HOME: &str = "198.51.100.7";

#[tokio::test]
async fn enrol_confirm_and_sign_in_with_a_code() {
    let (server, clock) = server(10).await;
    let alice = server.signed_in("alice").await;
    // Nothing enabled yet; a first enrolment is pending only.
    let status: Value = alice.get("/v1/me/mfa").await.json().await.unwrap();
    assert_eq!(
        status,
        json!({ "totp": false, "recovery_codes": 0, "passkeys": 0 })
    );
    let r = alice
        .unsafe_req(Method::POST, "/v1/me/mfa/totp")
        .send()
        .await
        .unwrap();
    let first: Value = r.json().await.unwrap();
    let uri = first["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Tessera:alice?secret="),
        "{uri}"
    );
    assert!(uri.contains(first["secret"].as_str().unwrap()));
    // While pending, the password alone still signs in.
    server.sign_in("alice").await;
    // Enrolling again replaces the pending secret: the first one's code is
    // refused at confirmation, and counts as a wrong code.
    let r = alice
        .unsafe_req(Method::POST, "/v1/me/mfa/totp")
        .send()
        .await
        .unwrap();
    let second: Value = r.json().await.unwrap();
    let secret = second["secret"].as_str().unwrap();
    assert_ne!(secret, first["secret"].as_str().unwrap());
    let stale = code_at(first["secret"].as_str().unwrap(), clock.now());
    if stale != code_at(secret, clock.now()) {
        let r = alice
            .unsafe_req(Method::POST, "/v1/me/mfa/totp/confirm")
            .json(&json!({ "code": stale }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem(r, 403).await["type"],
            "urn:tessera:problem:wrong-code"
        );
    }
    // Without the CSRF token, nothing.
    let r = alice
        .client
        .post(alice.url("/v1/me/mfa/totp/confirm"))
        .json(&json!({ "code": code_at(secret, clock.now()) }))
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    let r = alice
        .unsafe_req(Method::POST, "/v1/me/mfa/totp/confirm")
        .json(&json!({ "code": code_at(secret, clock.now()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let codes: Value = r.json().await.unwrap();
    let codes = codes["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let status: Value = alice.get("/v1/me/mfa").await.json().await.unwrap();
    assert_eq!(
        status,
        json!({ "totp": true, "recovery_codes": 10, "passkeys": 0 })
    );
    // Enrolling while enabled is a conflict.
    let r = alice
        .unsafe_req(Method::POST, "/v1/me/mfa/totp")
        .send()
        .await
        .unwrap();
    problem(r, 409).await;

    // Sign-in now stops after the password.
    let phone = browser();
    let token = password_step(&server, &phone, "alice", HOME).await;
    // The confirming code is spent: the same code, still in its step, is
    // refused (and the token stays usable).
    let replay = code_at(secret, clock.now());
    let r = code_step(&server, &phone, &token, &replay, HOME).await;
    assert_eq!(
        problem(r, 401).await["type"],
        "urn:tessera:problem:invalid-code"
    );
    next_step(&clock);
    let r = code_step(&server, &phone, &token, &code_at(secret, clock.now()), HOME).await;
    assert_eq!(r.status(), 200);
    assert!(set_cookie(r.headers()).unwrap().contains("tessera"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["session"]["amr"], json!(["pwd", "otp", "mfa"]));
    // The cookie works; the token is spent.
    let me = phone.get(server.url("/v1/session")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    next_step(&clock);
    let r = code_step(&server, &phone, &token, &code_at(secret, clock.now()), HOME).await;
    assert_eq!(
        problem(r, 401).await["type"],
        "urn:tessera:problem:invalid-mfa-token"
    );
    // The sessions list tells how each session was made.
    let listed: Value = alice.get("/v1/me/sessions").await.json().await.unwrap();
    let amrs: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["amr"])
        .collect();
    assert!(amrs.contains(&&json!(["pwd"])));
    assert!(amrs.contains(&&json!(["pwd", "otp", "mfa"])));
}

#[tokio::test]
async fn the_password_grant_stops_for_the_second_factor_and_the_mfa_grant_finishes() {
    let (server, clock) = server(10).await;
    let alice = server.signed_in("alice").await;
    let (secret, _) = enable_totp(&alice, &clock).await;
    next_step(&clock);
    let tokens = server.anon();
    let r = tokens
        .post(server.url("/v1/token"))
        .header("x-forwarded-for", HOME)
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let body = common::oauth_error(r, 401, "mfa_required").await;
    let token = body["mfa_token"].as_str().unwrap();
    // A cookie sign-in's endpoint does not finish a token sign-in.
    let r = code_step(
        &server,
        &browser(),
        token,
        &code_at(&secret, clock.now()),
        HOME,
    )
    .await;
    assert_eq!(
        problem(r, 401).await["type"],
        "urn:tessera:problem:invalid-mfa-token"
    );
    let r = tokens
        .post(server.url("/v1/token"))
        .header("x-forwarded-for", HOME)
        .form(&[
            ("grant_type", "urn:tessera:grant-type:mfa"),
            ("mfa_token", token),
            ("code", &code_at(&secret, clock.now())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pair: Value = r.json().await.unwrap();
    let claims = jwt_part(pair["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    // A refresh keeps what the session was proven with.
    let r = tokens
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", pair["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let refreshed: Value = r.json().await.unwrap();
    let claims = jwt_part(refreshed["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    // Missing fields and spent tokens speak OAuth.
    let r = tokens
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "urn:tessera:grant-type:mfa"),
            ("mfa_token", token),
        ])
        .send()
        .await
        .unwrap();
    common::oauth_error(r, 400, "invalid_request").await;
    next_step(&clock);
    let r = tokens
        .post(server.url("/v1/token"))
        .header("x-forwarded-for", HOME)
        .form(&[
            ("grant_type", "urn:tessera:grant-type:mfa"),
            ("mfa_token", token),
            ("code", &code_at(&secret, clock.now())),
        ])
        .send()
        .await
        .unwrap();
    common::oauth_error(r, 400, "invalid_grant").await;
    // A user without a second factor gets tokens from the password, with
    // amr pwd.
    server.register("bob").await;
    let pair: Value = tokens
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = jwt_part(pair["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["amr"], json!(["pwd"]));
}

#[tokio::test]
async fn codes_of_other_steps_and_malformed_codes_are_refused() {
    let (server, clock) = server(100).await;
    let alice = server.signed_in("alice").await;
    let (secret, _) = enable_totp(&alice, &clock).await;
    // Two steps on: the step before the current one was never spent.
    next_step(&clock);
    next_step(&clock);
    let phone = browser();
    let token = password_step(&server, &phone, "alice", HOME).await;
    let now = clock.now();
    let current = code_at(&secret, now);
    for offset in [-5, -2, 2, 3] {
        let other = code_at(&secret, now + Duration::seconds(30 * offset));
        if other == current {
            continue; // one in a million: the same digits
        }
        let r = code_step(&server, &phone, &token, &other, HOME).await;
        assert_eq!(
            problem(r, 401).await["type"],
            "urn:tessera:problem:invalid-code",
            "step {offset}"
        );
    }
    for junk in [
        "",
        "12345",
        "1234567",
        "abcdef",
        "12 34 5x",
        "ｘ",
        "\u{0}",
        "zzzz-zzzz-zzzz-zzzz",
        &"9".repeat(5000),
    ] {
        let r = code_step(&server, &phone, &token, junk, HOME).await;
        let status = r.status().as_u16();
        assert!(status == 400 || status == 401, "{junk:?}: {status}");
        problem(r, status).await;
    }
    // Wrong types and missing fields are 400, never 500.
    for body in [
        json!({}),
        json!({ "mfa_token": token }),
        json!({ "code": current }),
        json!({ "mfa_token": 5, "code": current }),
        json!({ "mfa_token": token, "code": ["123456"] }),
    ] {
        let r = phone
            .post(server.url("/v1/session/mfa"))
            .header("x-forwarded-for", HOME)
            .json(&body)
            .send()
            .await
            .unwrap();
        problem(r, 400).await;
    }
    // The code of the step before still counts (clock drift): ±1 step.
    let previous = code_at(&secret, now - Duration::seconds(30));
    let r = code_step(&server, &phone, &token, &previous, HOME).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn malformed_unknown_and_foreign_tokens_get_one_answer() {
    let (server, clock) = server(100).await;
    let alice = server.signed_in("alice").await;
    let (secret, _) = enable_totp(&alice, &clock).await;
    next_step(&clock);
    let phone = browser();
    let token = password_step(&server, &phone, "alice", HOME).await;
    let code = code_at(&secret, clock.now());
    let unknown = format!("mt_{}", "A".repeat(43));
    let mut answers = Vec::new();
    for (token, ip) in [
        ("", HOME),
        ("mt_", HOME),
        ("garbage", HOME),
        (&format!("ts_{}", &token[3..]), HOME),
        (unknown.as_str(), HOME),
        // The right token from another address.
        (token.as_str(), "203.0.113.9"),
        (token.as_str(), "2001:db8::1"),
    ] {
        let r = code_step(&server, &phone, token, &code, ip).await;
        let body = problem(r, 401).await;
        assert_eq!(
            body["type"], "urn:tessera:problem:invalid-mfa-token",
            "{token:?}"
        );
        answers.push(body);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // None of it spent the code or the token: from home they still work.
    let r = code_step(&server, &phone, &token, &code, HOME).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_token_lives_five_minutes() {
    let (server, clock) = server(100).await;
    let alice = server.signed_in("alice").await;
    let (secret, _) = enable_totp(&alice, &clock).await;
    next_step(&clock);
    let phone = browser();
    let token = password_step(&server, &phone, "alice", HOME).await;
    clock.advance(Duration::minutes(5));
    let r = code_step(
        &server,
        &phone,
        &token,
        &code_at(&secret, clock.now()),
        HOME,
    )
    .await;
    assert_eq!(
        problem(r, 401).await["type"],
        "urn:tessera:problem:invalid-mfa-token"
    );
    // A new password step gives a new token, which works.
    let token = password_step(&server, &phone, "alice", HOME).await;
    let r = code_step(
        &server,
        &phone,
        &token,
        &code_at(&secret, clock.now()),
        HOME,
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn guessing_codes_hits_the_limit_and_then_even_the_right_code_waits() {
    let (server, clock) = server(3).await;
    let alice = server.signed_in("alice").await;
    let (secret, _) = enable_totp(&alice, &clock).await;
    next_step(&clock);
    let phone = browser();
    let token = password_step(&server, &phone, "alice", HOME).await;
    let right = code_at(&secret, clock.now());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..3 {
        let r = code_step(&server, &phone, &token, wrong, HOME).await;
        assert_eq!(
            problem(r, 401).await["type"],
            "urn:tessera:problem:invalid-code"
        );
    }
    let r = code_step(&server, &phone, &token, &right, HOME).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    assert_eq!(
        problem(r, 429).await["type"],
        "urn:tessera:problem:rate-limited"
    );
    // The account is slowed down too: from another address, even the
    // password step waits (and a right password does not reset the count).
    let r = browser()
        .post(server.url("/v1/session"))
        .header("x-forwarded-for", "192.0.2.50")
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(r, 429).await["type"],
        "urn:tessera:problem:rate-limited"
    );
    // Once the wait is over, the right password and code sign in.
    clock.advance(Duration::seconds(i64::try_from(retry).unwrap() + 1));
    let token = password_step(&server, &phone, "alice", HOME).await;
    let r = code_step(
        &server,
        &phone,
        &token,
        &code_at(&secret, clock.now()),
        HOME,
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn recovery_codes_sign_in_once_each() {
    let (server, clock) = server(100).await;
    let alice = server.signed_in("alice").await;
    let (_, codes) = enable_totp(&alice, &clock).await;
    let phone = browser();
    let token = password_step(&server, &phone, "alice", HOME).await;
    // Typed in capitals with spaces: still the code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let r = code_step(&server, &phone, &token, &typed, HOME).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["session"]["amr"], json!(["pwd", "otp", "mfa"]));
    let token = password_step(&server, &phone, "alice", HOME).await;
    let r = code_step(&server, &phone, &token, &codes[0], HOME).await;
    assert_eq!(
        problem(r, 401).await["type"],
        "urn:tessera:problem:invalid-code"
    );
    let r = code_step(&server, &phone, &token, &codes[1], HOME).await;
    assert_eq!(r.status(), 200);
    let status: Value = alice.get("/v1/me/mfa").await.json().await.unwrap();
    assert_eq!(status["recovery_codes"], 8);
    let audit: Value = server
        .admin(Method::GET, "/v1/admin/audit")
        .await
        .json()
        .await
        .unwrap();
    let used = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "mfa.recovery_code_used")
        .count();
    assert_eq!(used, 2);
    // A new set replaces the old one.
    let r = alice
        .unsafe_req(Method::POST, "/v1/me/mfa/recovery-codes")
        .send()
        .await
        .unwrap();
    let fresh: Value = r.json().await.unwrap();
    let fresh = fresh["recovery_codes"].as_array().unwrap();
    assert_eq!(fresh.len(), 10);
    let token = password_step(&server, &phone, "alice", HOME).await;
    let r = code_step(&server, &phone, &token, &codes[2], HOME).await;
    assert_eq!(
        problem(r, 401).await["type"],
        "urn:tessera:problem:invalid-code"
    );
    let r = code_step(&server, &phone, &token, fresh[2].as_str().unwrap(), HOME).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn disabling_needs_the_password() {
    let (server, clock) = server(100).await;
    let alice = server.signed_in("alice").await;
    enable_totp(&alice, &clock).await;
    let r = alice
        .unsafe_req(Method::DELETE, "/v1/me/mfa/totp")
        .json(&json!({ "password": "not the password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(r, 403).await["type"],
        "urn:tessera:problem:wrong-password"
    );
    let r = alice
        .unsafe_req(Method::DELETE, "/v1/me/mfa/totp")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(r, 400).await;
    let r = alice
        .unsafe_req(Method::DELETE, "/v1/me/mfa/totp")
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = alice
        .unsafe_req(Method::DELETE, "/v1/me/mfa/totp")
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
    // The password alone signs in again.
    server.sign_in("alice").await;
    let audit: Value = server
        .admin(Method::GET, "/v1/admin/audit")
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"mfa.totp_enabled"));
    assert!(kinds.contains(&"mfa.totp_disabled"));
}

#[tokio::test]
async fn an_admin_sees_and_resets_second_factors() {
    let (server, clock) = server(100).await;
    let alice = server.signed_in("alice").await;
    enable_totp(&alice, &clock).await;
    let page: Value = server
        .admin(Method::GET, "/v1/admin/users")
        .await
        .json()
        .await
        .unwrap();
    let listed = &page["users"][0];
    assert_eq!(listed["username"], "alice");
    assert_eq!(
        listed["mfa"],
        json!({ "totp": true, "recovery_codes": 10, "passkeys": 0 })
    );
    let id = listed["id"].as_str().unwrap();
    // Not for users, nor for unknown ids.
    let r = alice
        .unsafe_req(Method::DELETE, &format!("/v1/admin/users/{id}/mfa"))
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    let r = server
        .admin(Method::DELETE, "/v1/admin/users/not-a-uuid/mfa")
        .await;
    problem(r, 404).await;
    let r = server
        .admin(
            Method::DELETE,
            &format!("/v1/admin/users/{}/mfa", uuid::Uuid::new_v4()),
        )
        .await;
    problem(r, 404).await;
    let r = server
        .admin(Method::DELETE, &format!("/v1/admin/users/{id}/mfa"))
        .await;
    assert_eq!(r.status(), 204);
    let page: Value = server
        .admin(Method::GET, "/v1/admin/users")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["users"][0]["mfa"]["totp"], false);
    server.sign_in("alice").await;
    let audit: Value = server
        .admin(Method::GET, "/v1/admin/audit")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "mfa.reset" && e["user_id"] == id)
    );
}

#[tokio::test]
async fn the_mfa_required_answer_comes_only_after_the_right_password() {
    let (server, clock) = server(100).await;
    let alice = server.signed_in("alice").await;
    enable_totp(&alice, &clock).await;
    for (name, password) in [("alice", "wrong password"), ("nobody", PASSWORD)] {
        let r = server
            .anon()
            .post(server.url("/v1/session"))
            .json(&json!({ "username": name, "password": password }))
            .send()
            .await
            .unwrap();
        let body = problem(r, 401).await;
        assert_eq!(body["type"], "urn:tessera:problem:invalid-credentials");
        assert!(body.get("mfa_token").is_none());
    }
}
