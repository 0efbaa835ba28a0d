//! Every way a session ends, as an attacker would probe it: a replaced
//! session, a sign-in racing a password change, repeated and expired token
//! revocations, and sign-out requests naming two credentials.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

/// Every revocation in the feed (sids and jtis), oldest first.
async fn revocation_feed(server: &TestServer) -> Vec<Value> {
    let r = server
        .anon()
        .get(server.url("/v1/revocations?since=0"))
        .bearer_auth(INTROSPECTION_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["revocations"].as_array().unwrap().clone()
}

/// `GET /v1/me` with exactly this cookie value.
async fn me_with_cookie(server: &TestServer, cookie: &str) -> u16 {
    server
        .anon()
        .get(server.url("/v1/me"))
        .header("cookie", format!("tessera={cookie}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_session_replaced_by_a_new_sign_in_is_refused_at_once_and_revoked_everywhere() {
    let server = TestServer::start().await;
    let old = server.signed_in("alice").await;
    // Used once, so this node holds it in its cache.
    assert_eq!(me_with_cookie(&server, &old.cookie).await, 200);
    // Signing in again from the same browser replaces that session.
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .header("cookie", format!("tessera={}", old.cookie))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        me_with_cookie(&server, &old.cookie).await,
        401,
        "the replaced session must not outlive its replacement"
    );
    // Other nodes learn of it through the revocation log.
    let feed = revocation_feed(&server).await;
    assert!(
        feed.iter()
            .any(|r| r["kind"] == "sid" && r["value"] == old.session_id.as_str()),
        "replaced session missing from the revocation feed: {feed:?}"
    );
    // And the end is audited like any other.
    let audit: Value = server
        .admin(Method::GET, "/v1/admin/audit?limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit["events"].as_array().unwrap().iter().any(|e| {
            e["kind"] == "session.revoked"
                && e["detail"]["session_id"] == old.session_id.as_str()
                && e["detail"]["by"] == "sign_in"
        }),
        "{audit}"
    );
}

/// Starts 24 sign-ins of `username`, spread over the next ~350 ms; each
/// yields the cookie or bearer token it got, if any.
fn sign_ins_spread_out(
    server: &Arc<TestServer>,
    username: &'static str,
) -> Vec<tokio::task::JoinHandle<Option<(bool, String)>>> {
    (0..24)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(i * 15)).await;
                let credentials = json!({ "username": username, "password": PASSWORD });
                if i % 2 == 0 {
                    let r = server
                        .anon()
                        .post(server.url("/v1/session"))
                        .json(&credentials)
                        .send()
                        .await
                        .unwrap();
                    let cookie = set_cookie(r.headers()).map(|c| cookie_value(&c).to_owned());
                    (r.status() == 200)
                        .then_some(cookie)
                        .flatten()
                        .map(|c| (true, c))
                } else {
                    let r = server
                        .token_request(&[
                            ("grant_type", "password"),
                            ("username", username),
                            ("password", PASSWORD),
                        ])
                        .await;
                    if r.status() != 200 {
                        return None;
                    }
                    let body: Value = r.json().await.unwrap();
                    Some((false, body["access_token"].as_str().unwrap().to_owned()))
                }
            })
        })
        .collect()
}

/// Whether any credential the sign-ins got still works.
async fn any_still_works(
    server: &TestServer,
    attempts: Vec<tokio::task::JoinHandle<Option<(bool, String)>>>,
) -> (usize, usize) {
    let mut made = 0;
    let mut working = 0;
    for attempt in attempts {
        let Some((is_cookie, credential)) = attempt.await.unwrap() else {
            continue;
        };
        made += 1;
        let status = if is_cookie {
            me_with_cookie(server, &credential).await
        } else {
            server
                .anon()
                .get(server.url("/v1/me"))
                .bearer_auth(&credential)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        if status != 401 {
            working += 1;
        }
    }
    (made, working)
}

/// A server with the real Argon2 cost: each sign-in spends long enough
/// between reading the password hash and storing its session for a change
/// to land in between.
async fn real_cost_server() -> Arc<TestServer> {
    Arc::new(
        TestServer::with(Options {
            core: tessera_core::TesseraConfig {
                hash_cost: tessera_core::password::HashCost::default(),
                ..cheap_hashing()
            },
            ..Options::default()
        })
        .await,
    )
}

#[tokio::test]
async fn no_session_made_with_the_old_password_survives_a_password_change() {
    let server = real_cost_server().await;
    let owner = server.signed_in("alice").await;
    let attempts = sign_ins_spread_out(&server, "alice");
    let r = owner
        .unsafe_req(Method::POST, "/v1/me/password")
        .json(&json!({ "current_password": PASSWORD, "new_password": "a whole new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Whether each sign-in finished before, during or after the change, it
    // proved only the old password: none of its sessions may work now.
    let (made, working) = any_still_works(&server, attempts).await;
    assert_eq!(
        working, 0,
        "{working} of {made} sessions made with the old password survived the change"
    );
}

#[tokio::test]
async fn no_sign_in_racing_a_disable_leaves_a_working_session() {
    let server = real_cost_server().await;
    let user = server.register("mallory").await;
    let id = user["id"].as_str().unwrap().to_owned();
    // Warm this node's caches with the enabled user.
    let tokens = server.tokens("mallory").await;
    assert_eq!(tokens.me().await.status(), 200);
    let attempts = sign_ins_spread_out(&server, "mallory");
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    let r = server
        .admin(Method::POST, &format!("/v1/admin/users/{id}/disable"))
        .await;
    assert_eq!(r.status(), 204);
    let (made, working) = any_still_works(&server, attempts).await;
    assert_eq!(
        working, 0,
        "{working} of {made} sign-ins racing the disable left a working session"
    );
    assert_eq!(tokens.me().await.status(), 401);
}

#[tokio::test]
async fn revoking_a_revoked_or_expired_token_writes_nothing() {
    let (server, clock) = TestServer::on_manual_clock().await;
    server.register("alice").await;
    let tokens = server.tokens("alice").await;
    let revoke = |token: String| {
        let request = server
            .anon()
            .post(server.url("/v1/token/revoke"))
            .form(&[("token", token)]);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(revoke(tokens.access.clone()).await, 200);
    let after_first = revocation_feed(&server).await.len();
    assert!(after_first >= 1);
    for _ in 0..20 {
        assert_eq!(revoke(tokens.access.clone()).await, 200);
        assert_eq!(revoke(tokens.refresh.clone()).await, 200);
    }
    assert_eq!(
        revocation_feed(&server).await.len(),
        after_first,
        "revoking an already revoked session must not grow the log"
    );

    // An access token of a live session, once expired, is harmless: revoking
    // it writes nothing and leaves its session alone.
    let live = server.tokens("alice").await;
    clock.advance(Duration::minutes(11));
    let before = revocation_feed(&server).await.len();
    assert_eq!(revoke(live.access.clone()).await, 200);
    assert_eq!(revocation_feed(&server).await.len(), before);
    assert_eq!(server.refresh(&live.refresh).await.status(), 200);
}

#[tokio::test]
async fn sign_out_acts_on_the_cookie_and_refuses_a_second_credential() {
    let server = TestServer::start().await;
    let browser = server.signed_in("alice").await;
    let tokens = server.tokens("alice").await;
    // Cookie and bearer token on one sign-out: ending either alone would
    // answer success while the other lives on.
    let r = browser
        .unsafe_req(Method::DELETE, "/v1/session")
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    let body = problem(r, 400).await;
    assert_eq!(body["type"], "urn:tessera:problem:ambiguous-credentials");
    assert_eq!(browser.get("/v1/me").await.status(), 200);
    assert_eq!(tokens.me().await.status(), 200);
    // GET /v1/session describes the cookie's session, whatever else is sent.
    let r = browser
        .client
        .get(browser.url("/v1/session"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["session"]["id"], browser.session_id.as_str());
    // The cookie alone signs the cookie's session out; the token lives on.
    let r = browser.delete("/v1/session").await;
    assert_eq!(r.status(), 204);
    assert_eq!(me_with_cookie(&server, &browser.cookie).await, 401);
    assert_eq!(tokens.me().await.status(), 200);
}
