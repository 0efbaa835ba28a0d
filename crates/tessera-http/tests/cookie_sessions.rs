//! Cookie sessions over real HTTP with a real cookie jar.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::clock::{Clock as _, ManualClock};
use tessera_core::secret::{Secret, SecretKind};
use time::{Duration, OffsetDateTime};

#[tokio::test]
async fn sign_in_sets_a_strict_cookie_and_answers_user_session_csrf() {
    let server = TestServer::with(Options {
        secure_cookie: true,
        ..Options::default()
    })
    .await;
    server.register("alice").await;
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "ALICE", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookie = set_cookie(r.headers()).unwrap();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("__Host-tessera=ts_"), "{cookie}");
    assert_eq!(cookie_value(&cookie).len(), 46);
    for expected in [
        "Path=/",
        "Max-Age=43200",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
    ] {
        assert!(attributes.contains(&expected), "{cookie} lacks {expected}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain"), "{cookie}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["session"]["kind"], "cookie");
    assert_eq!(body["session"]["current"], true);
    assert_eq!(body["csrf_token"].as_str().unwrap().len(), 43);
    assert!(!body.to_string().contains(cookie_value(&cookie)));
}

#[tokio::test]
async fn remember_me_by_form_gets_the_long_lifetime() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("remember_me", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = set_cookie(r.headers()).unwrap();
    assert!(
        cookie.contains(&format!("Max-Age={}", 30 * 86_400)),
        "{cookie}"
    );
    assert!(
        cookie.starts_with("tessera=ts_"),
        "insecure development cookie: {cookie}"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let mut bodies = Vec::new();
    for (username, password) in [
        ("alice", "not the password"),
        ("nobody", "not the password"),
        ("", "x"),
        ("a\u{202e}b", PASSWORD),
    ] {
        let r = server
            .anon()
            .post(server.url("/v1/session"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert!(set_cookie(r.headers()).is_none());
        bodies.push(problem(r, 401).await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

#[tokio::test]
async fn the_cookie_authenticates_me_and_session() {
    let server = TestServer::start().await;
    let alice = server.signed_in("alice").await;
    let me: Value = alice.get("/v1/me").await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["roles"], json!([]));
    let r = alice.get("/v1/session").await;
    assert_eq!(r.status(), 200);
    let session: Value = r.json().await.unwrap();
    assert_eq!(session["session"]["id"], alice.session_id.as_str());
    assert_eq!(session["csrf_token"], alice.csrf.as_str());
}

#[tokio::test]
async fn sign_out_needs_csrf_then_ends_the_session_server_side() {
    let server = TestServer::start().await;
    let alice = server.signed_in("alice").await;
    let r = alice
        .client
        .delete(alice.url("/v1/session"))
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    assert_eq!(alice.get("/v1/me").await.status(), 200);

    let r = alice.delete("/v1/session").await;
    assert_eq!(r.status(), 204);
    let cleared = set_cookie(r.headers()).unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(alice.get("/v1/me").await.status(), 401);
    // Replaying the old cookie value does not bring the session back.
    let r = server
        .anon()
        .get(server.url("/v1/me"))
        .header("cookie", format!("tessera={}", alice.cookie))
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
    // Signing out again is harmless.
    assert_eq!(alice.delete("/v1/session").await.status(), 204);
}

#[tokio::test]
async fn sign_in_replaces_a_planted_cookie() {
    let server = TestServer::start().await;
    server.register("victim").await;
    // The attacker signs in to their own account and plants that cookie.
    let attacker = server.signed_in("attacker").await;
    let planted = format!("tessera={}", attacker.cookie);
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .header("cookie", &planted)
        .json(&json!({ "username": "victim", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let fresh = set_cookie(r.headers()).unwrap();
    assert_ne!(cookie_value(&fresh), attacker.cookie);
    // The planted session is gone: it can be used by nobody.
    assert_eq!(attacker.get("/v1/me").await.status(), 401);
    // A made-up but well-formed planted value never becomes a session either.
    let invented = Secret::generate(SecretKind::Session).unwrap().expose();
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .header("cookie", format!("tessera={invented}"))
        .json(&json!({ "username": "victim", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let issued = set_cookie(r.headers()).unwrap();
    assert_ne!(cookie_value(&issued), invented);
    let r = server
        .anon()
        .get(server.url("/v1/me"))
        .header("cookie", format!("tessera={invented}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn csrf_missing_wrong_foreign_origin_and_cross_site_are_refused() {
    let server = TestServer::with(Options {
        allowed_origins: vec!["https://app.example.com".into()],
        ..Options::default()
    })
    .await;
    let alice = server.signed_in("alice").await;
    let other = server.sign_in("alice").await;
    let path = format!("/v1/me/sessions/{}", other.session_id);

    let r = alice.client.delete(alice.url(&path)).send().await.unwrap();
    assert_eq!(
        problem(r, 403).await["type"],
        "urn:tessera:problem:csrf-token-missing"
    );
    let r = alice
        .client
        .delete(alice.url(&path))
        .header("x-csrf-token", "x".repeat(43))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(r, 403).await["type"],
        "urn:tessera:problem:csrf-token-invalid"
    );
    // Another session's token is no good either.
    let r = alice
        .client
        .delete(alice.url(&path))
        .header("x-csrf-token", &other.csrf)
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    for origin in ["https://evil.example.com", "null", "http://127.0.0.1:1"] {
        let r = alice
            .unsafe_req(Method::DELETE, &path)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem(r, 403).await["type"],
            "urn:tessera:problem:foreign-origin",
            "{origin}"
        );
    }
    for site in ["cross-site", "same-site"] {
        let r = alice
            .unsafe_req(Method::DELETE, &path)
            .header("sec-fetch-site", site)
            .send()
            .await
            .unwrap();
        problem(r, 403).await;
    }
    assert_eq!(
        other.get("/v1/me").await.status(),
        200,
        "nothing was revoked so far"
    );

    // The allowed origin, with the token, goes through.
    let r = alice
        .unsafe_req(Method::DELETE, &path)
        .header("origin", "https://app.example.com")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(other.get("/v1/me").await.status(), 401);
}

#[tokio::test]
async fn csrf_token_works_as_a_form_field_and_same_origin_passes() {
    let server = TestServer::start().await;
    let alice = server.signed_in("alice").await;
    let r = alice
        .client
        .post(alice.url("/v1/me/password"))
        .header("origin", &server.base)
        .form(&[
            ("current_password", PASSWORD),
            ("new_password", "a brand new passphrase"),
            ("csrf_token", alice.csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = alice
        .client
        .post(alice.url("/v1/me/password"))
        .form(&[
            ("current_password", "a brand new passphrase"),
            ("new_password", "yet another passphrase"),
            ("csrf_token", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
}

#[tokio::test]
async fn sign_in_from_a_foreign_origin_is_refused() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .header("origin", "https://evil.example.com")
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
}

fn manual_server_options(clock: &ManualClock) -> Options {
    let mut core = cheap_hashing();
    core.session.idle_timeout = Duration::minutes(30);
    core.session.absolute_timeout = Duration::hours(12);
    Options {
        clock: Some(clock.clone()),
        core,
        ..Options::default()
    }
}

#[tokio::test]
async fn idle_sessions_expire_and_the_sweep_removes_them() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = TestServer::with(manual_server_options(&clock)).await;
    let alice = server.signed_in("alice").await;
    clock.advance(Duration::minutes(29));
    assert_eq!(
        alice.get("/v1/me").await.status(),
        200,
        "used within the idle timeout"
    );
    clock.advance(Duration::minutes(29));
    assert_eq!(
        alice.get("/v1/me").await.status(),
        200,
        "use pushed the idle expiry"
    );
    clock.advance(Duration::minutes(31));
    let r = alice.get("/v1/me").await;
    problem(r, 401).await;
    assert_eq!(
        server.state.core().sweeper.sweep_expired().await.unwrap(),
        1
    );
    assert!(server.state.core().sweeper.sweep_expired().await.unwrap() == 0);
}

#[tokio::test]
async fn the_absolute_lifetime_ends_even_an_active_session() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = TestServer::with(manual_server_options(&clock)).await;
    let alice = server.signed_in("alice").await;
    for _ in 0..(12 * 60 / 20 - 1) {
        clock.advance(Duration::minutes(20));
        assert_eq!(alice.get("/v1/me").await.status(), 200);
    }
    clock.advance(Duration::minutes(21));
    assert_eq!(alice.get("/v1/me").await.status(), 401);
}

#[tokio::test]
async fn last_seen_is_written_at_most_once_a_minute() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = TestServer::with(manual_server_options(&clock)).await;
    let alice = server.signed_in("alice").await;
    let seen = || async {
        let list: Value = alice.get("/v1/me/sessions").await.json().await.unwrap();
        list[0]["last_seen_at"].as_str().unwrap().to_owned()
    };
    let first = seen().await;
    clock.advance(Duration::seconds(30));
    assert_eq!(seen().await, first, "not rewritten within a minute");
    clock.advance(Duration::seconds(31));
    assert_ne!(seen().await, first, "rewritten after a minute");
}

/// Writes of sessions' uses so far, as `/metrics` counts store operations.
async fn touches(server: &TestServer) -> f64 {
    let text = server.exposition().await;
    sample(
        &text,
        "tessera_store_operation_duration_seconds_count{operation=\"touch_session\"}",
    )
}

#[tokio::test]
async fn a_use_due_is_written_once_however_many_requests_find_it_due() {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = TestServer::with(manual_server_options(&clock)).await;
    let alice = server.signed_in("alice").await;
    assert_eq!(alice.get("/v1/me").await.status(), 200);
    let before = touches(&server).await;
    clock.advance(Duration::seconds(61));
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let request = alice.client.get(alice.url("/v1/me"));
        requests.spawn(async move { request.send().await.unwrap().status() });
    }
    for status in requests.join_all().await {
        assert_eq!(status, 200);
    }
    assert_eq!(
        touches(&server).await - before,
        1.0,
        "one write for 16 requests"
    );
    let list: Value = alice.get("/v1/me/sessions").await.json().await.unwrap();
    let seen = OffsetDateTime::parse(
        list[0]["last_seen_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        seen >= clock.now() - Duration::seconds(1),
        "the write landed"
    );
}

#[tokio::test]
async fn session_list_shows_both_devices_without_secrets() {
    let server = TestServer::start().await;
    let laptop = server.signed_in("alice").await;
    let phone = server.sign_in("alice").await;
    let r = laptop.get("/v1/me/sessions").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(&laptop.cookie) && !text.contains(&phone.cookie));
    let list: Value = serde_json::from_str(&text).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for entry in list {
        for field in [
            "id",
            "kind",
            "created_at",
            "last_seen_at",
            "expires_at",
            "ip",
            "user_agent",
            "current",
        ] {
            assert!(entry.get(field).is_some(), "{field} missing from {entry}");
        }
        let is_laptop = entry["id"] == laptop.session_id.as_str();
        assert_eq!(entry["current"], is_laptop);
    }
}

#[tokio::test]
async fn revoking_one_session() {
    let server = TestServer::start().await;
    let laptop = server.signed_in("alice").await;
    let phone = server.sign_in("alice").await;
    let bob = server.signed_in("bob").await;
    // Another user's session, a made-up id and garbage are all 404.
    for id in [
        bob.session_id.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAA",
        "..%2F..%2Fetc",
        "%00",
        "x",
    ] {
        let r = laptop.delete(&format!("/v1/me/sessions/{id}")).await;
        problem(r, 404).await;
    }
    assert_eq!(bob.get("/v1/me").await.status(), 200);
    let r = laptop
        .delete(&format!("/v1/me/sessions/{}", phone.session_id))
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(phone.get("/v1/me").await.status(), 401);
    assert_eq!(laptop.get("/v1/me").await.status(), 200);
    // Revoking one's own session by id signs out and clears the cookie.
    let r = laptop
        .delete(&format!("/v1/me/sessions/{}", laptop.session_id))
        .await;
    assert_eq!(r.status(), 204);
    assert!(set_cookie(r.headers()).unwrap().contains("Max-Age=0"));
    assert_eq!(laptop.get("/v1/me").await.status(), 401);
}

#[tokio::test]
async fn revoking_others_and_all() {
    let server = TestServer::start().await;
    let a = server.signed_in("alice").await;
    let b = server.sign_in("alice").await;
    let c = server.sign_in("alice").await;
    let bob = server.signed_in("bob").await;
    for bad in ["", "?scope=", "?scope=everyone", "?scope=ALL"] {
        let r = a.delete(&format!("/v1/me/sessions{bad}")).await;
        problem(r, 400).await;
    }
    let r = a.delete("/v1/me/sessions?scope=others").await;
    assert_eq!(r.status(), 204);
    assert!(set_cookie(r.headers()).is_none());
    assert_eq!(a.get("/v1/me").await.status(), 200);
    assert_eq!(b.get("/v1/me").await.status(), 401);
    assert_eq!(c.get("/v1/me").await.status(), 401);
    let d = server.sign_in("alice").await;
    let r = a.delete("/v1/me/sessions?scope=all").await;
    assert_eq!(r.status(), 204);
    assert!(set_cookie(r.headers()).unwrap().contains("Max-Age=0"));
    assert_eq!(a.get("/v1/me").await.status(), 401);
    assert_eq!(d.get("/v1/me").await.status(), 401);
    assert_eq!(
        bob.get("/v1/me").await.status(),
        200,
        "other users are untouched"
    );
}

#[tokio::test]
async fn password_change_rotates_this_session_and_revokes_the_others() {
    let server = TestServer::start().await;
    let laptop = server.signed_in("alice").await;
    let phone = server.sign_in("alice").await;
    let change = |current: &'static str, new: &'static str| {
        laptop
            .unsafe_req(Method::POST, "/v1/me/password")
            .json(&json!({ "current_password": current, "new_password": new }))
    };
    let r = change("not my password", "a brand new passphrase")
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    let r = change(PASSWORD, "short").send().await.unwrap();
    problem(r, 400).await;
    assert_eq!(
        phone.get("/v1/me").await.status(),
        200,
        "failed changes revoke nothing"
    );

    let r = change(PASSWORD, "a brand new passphrase")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let rotated = set_cookie(r.headers()).unwrap();
    assert_ne!(cookie_value(&rotated), laptop.cookie);
    // The jar now holds the rotated cookie, which works; the old value does not.
    assert_eq!(laptop.get("/v1/me").await.status(), 200);
    let r = server
        .anon()
        .get(server.url("/v1/me"))
        .header("cookie", format!("tessera={}", laptop.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(phone.get("/v1/me").await.status(), 401);
    // The session was replaced: new id, new secret, new CSRF token; the old
    // id is gone from the list and revoked everywhere.
    let session: Value = laptop.get("/v1/session").await.json().await.unwrap();
    assert_ne!(session["csrf_token"], laptop.csrf.as_str());
    assert_ne!(session["session"]["id"], laptop.session_id.as_str());
    let list: Value = laptop.get("/v1/me/sessions").await.json().await.unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [session["session"]["id"].as_str().unwrap()]);
    assert!(
        server
            .state
            .core()
            .revocations
            .set()
            .is_session_revoked(&laptop.session_id)
    );
    // Old password no longer signs in; the new one does.
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "alice", "password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn garbage_cookies_are_401_never_500() {
    let server = TestServer::start().await;
    server.signed_in("alice").await;
    let long = format!("tessera=ts_{}", "A".repeat(9000));
    let invented = format!(
        "tessera={}",
        Secret::generate(SecretKind::Session).unwrap().expose()
    );
    let values: Vec<&[u8]> = vec![
        b"tessera=",
        b"tessera=garbage",
        b"tessera=ts_",
        b"tessera=rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        b"tessera=ts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        b"tessera=ts_\xc3\xa9\xc3\xa9\xc3\xa9",
        b"tessera=\xff\xfe\xfd",
        b"tessera=\"ts_quoted\"",
        b";;;==;tessera",
        long.as_bytes(),
        invented.as_bytes(),
        b"tessera=' OR 1=1 --",
    ];
    for value in values {
        let header = reqwest::header::HeaderValue::from_bytes(value).unwrap();
        let r = server
            .anon()
            .get(server.url("/v1/me"))
            .header("cookie", header.clone())
            .send()
            .await
            .unwrap();
        problem(r, 401).await;
        let r = server
            .anon()
            .delete(server.url("/v1/me/sessions?scope=all"))
            .header("cookie", header)
            .send()
            .await
            .unwrap();
        problem(r, 401).await;
    }
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_sign_ins() {
    let server = TestServer::start().await;
    let alice = server.signed_in("alice").await;
    let me: Value = alice.get("/v1/me").await.json().await.unwrap();
    let id = me["id"].as_str().unwrap();
    let r = server
        .admin(
            reqwest::Method::POST,
            &format!("/v1/admin/users/{id}/disable"),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(alice.get("/v1/me").await.status(), 401);
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let body = problem(r, 401).await;
    assert_eq!(body["type"], "urn:tessera:problem:invalid-credentials");
    let r = server
        .admin(reqwest::Method::POST, "/v1/admin/users/not-a-uuid/disable")
        .await;
    problem(r, 404).await;
}

#[tokio::test]
async fn the_current_session_shows_its_address_and_agent_even_when_cached() {
    let server = TestServer::start().await;
    let alice = server.signed_in("alice").await;
    for _ in 0..2 {
        let body: Value = alice.get("/v1/session").await.json().await.unwrap();
        assert_eq!(body["session"]["ip"], "127.0.0.1");
        assert_eq!(body["session"]["user_agent"], "tessera-tests", "{body}");
    }
}
