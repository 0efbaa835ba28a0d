//! Passkeys over HTTP with a software authenticator: registration, the
//! list, renaming and removal, sign-in by passkey alone (cookie and
//! tokens), and the hostile cases: forged and replayed assertions, reused
//! and foreign ceremonies, another user's credential, the wrong origin or
//! relying party, no user verification, expired ceremonies, malformed
//! bodies (always a 4xx problem, never a 500).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::authenticator::{Answer, SoftPasskey, UP, b64};
use common::{CookieClient, Options, TestServer, cheap_hashing, problem};
use reqwest::Method;
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::with(Options {
        core: cheap_hashing(),
        localhost: true,
        ..Options::default()
    })
    .await
}

async fn start_registration(user: &CookieClient) -> Value {
    let r = user
        .unsafe_req(Method::POST, "/v1/me/passkeys/register/start")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn finish_registration(user: &CookieClient, body: Value) -> reqwest::Response {
    user.unsafe_req(Method::POST, "/v1/me/passkeys/register/finish")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Registers a new software passkey named `name` for `user`.
async fn register(server: &TestServer, user: &CookieClient, name: &str) -> (SoftPasskey, Value) {
    let mut key = SoftPasskey::new(&server.base);
    let started = start_registration(user).await;
    let credential = key.create(&started["options"], &key.honest());
    let r = finish_registration(
        user,
        json!({ "ceremony_id": started["ceremony_id"], "name": name, "credential": credential }),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    (key, r.json().await.unwrap())
}

async fn start_sign_in(server: &TestServer) -> Value {
    let r = server
        .anon()
        .post(server.url("/v1/passkeys/authenticate/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn finish_sign_in(server: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
        .post(server.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A sign-in answer from `key` with `answer`, for a new ceremony.
async fn signed(server: &TestServer, key: &mut SoftPasskey, answer: &Answer) -> Value {
    let started = start_sign_in(server).await;
    let credential = key.get(&started["options"], answer);
    json!({ "ceremony_id": started["ceremony_id"], "credential": credential })
}

/// The honest sign-in answer from `key`, for a new ceremony.
async fn signed_honest(server: &TestServer, key: &mut SoftPasskey) -> Value {
    let honest = key.honest();
    signed(server, key, &honest).await
}

/// `tessera_sign_ins_total{outcome}` now.
async fn sign_ins(server: &TestServer, outcome: &str) -> u64 {
    let text = server.exposition().await;
    let series = format!("tessera_sign_ins_total{{outcome=\"{outcome}\"}}");
    common::sample(&text, &series) as u64
}

async fn refused(server: &TestServer, body: &Value) -> Value {
    let r = finish_sign_in(server, "/v1/passkeys/authenticate/finish", body).await;
    let body = problem(r, 401).await;
    assert_eq!(body["type"], "urn:tessera:problem:passkey-not-accepted");
    body
}

#[tokio::test]
async fn a_passkey_is_registered_listed_renamed_used_and_removed() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let (mut key, view) = register(&server, &alice, "Laptop").await;
    assert_eq!(view["name"], "Laptop");
    assert!(view["last_used_at"].is_null());

    let list: Value = alice.get("/v1/me/passkeys").await.json().await.unwrap();
    assert_eq!(list["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(list["passkeys"][0]["id"], view["id"]);

    // The options ask for a discoverable credential with user verification.
    let started = start_registration(&alice).await;
    let selection = &started["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["userVerification"], "required");
    // ...and exclude the passkey registered already.
    let excluded = started["options"]["publicKey"]["excludeCredentials"][0]["id"].clone();
    assert_eq!(excluded, b64(&key.credential_id));

    let id = view["id"].as_str().unwrap();
    let r = alice
        .unsafe_req(Method::PATCH, &format!("/v1/me/passkeys/{id}"))
        .json(&json!({ "name": "Work laptop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Signing in with it alone: a cookie session of alice's.
    let body = signed_honest(&server, &mut key).await;
    let r = finish_sign_in(&server, "/v1/passkeys/authenticate/finish", &body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_some());
    let session: Value = r.json().await.unwrap();
    assert_eq!(session["user"]["username"], "alice");
    assert!(session["csrf_token"].is_string());
    // Proven by the passkey alone: `hwk`, not `pwd`.
    assert_eq!(session["session"]["amr"], json!(["hwk"]));

    let list: Value = alice.get("/v1/me/passkeys").await.json().await.unwrap();
    assert_eq!(list["passkeys"][0]["name"], "Work laptop");
    assert!(list["passkeys"][0]["last_used_at"].is_string());

    let r = alice.delete(&format!("/v1/me/passkeys/{id}")).await;
    assert_eq!(r.status(), 204);
    let r = alice.delete(&format!("/v1/me/passkeys/{id}")).await;
    problem(r, 404).await;
    let list: Value = alice.get("/v1/me/passkeys").await.json().await.unwrap();
    assert!(list["passkeys"].as_array().unwrap().is_empty());

    // A removed passkey signs no one in.
    let body = signed_honest(&server, &mut key).await;
    refused(&server, &body).await;

    // Both changes are in the audit log.
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
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"passkey.added"), "{kinds:?}");
    assert!(kinds.contains(&"passkey.removed"), "{kinds:?}");
}

#[tokio::test]
async fn a_passkey_signs_in_for_tokens() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let (mut key, _) = register(&server, &alice, "Phone").await;
    let body = signed_honest(&server, &mut key).await;
    let r = finish_sign_in(&server, "/v1/passkeys/authenticate/finish-token", &body).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let me = server
        .anon()
        .get(server.url("/v1/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    // The access token says how: a passkey (`hwk`).
    let payload = tokens["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims: Value = serde_json::from_slice(&common::authenticator::unb64(payload)).unwrap();
    assert_eq!(claims["amr"], json!(["hwk"]));
}

/// `POST /v1/session` with the password of a user who has a passkey: the
/// `mfa_token` to finish with.
async fn password_step(server: &TestServer, username: &str) -> String {
    let r = server
        .anon()
        .post(server.url("/v1/session"))
        .json(&json!({ "username": username, "password": common::PASSWORD }))
        .send()
        .await
        .unwrap();
    let body = problem(r, 401).await;
    assert_eq!(body["type"], "urn:tessera:problem:mfa-required");
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn start_second_factor(server: &TestServer, token: &str) -> reqwest::Response {
    server
        .anon()
        .post(server.url("/v1/session/mfa/passkey"))
        .json(&json!({ "mfa_token": token }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_passkey_is_the_second_factor_after_a_password() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let (mut key, _) = register(&server, &alice, "Laptop").await;
    let bob = server.signed_in("bob").await;
    let (mut bobs, _) = register(&server, &bob, "Bob's").await;

    // With a passkey registered, the password alone no longer signs in.
    let token = password_step(&server, "alice").await;
    let r = start_second_factor(&server, &token).await;
    assert_eq!(r.status(), 200);
    let started: Value = r.json().await.unwrap();
    // The options name alice's passkey, and only hers.
    let allowed = started["options"]["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["id"], b64(&key.credential_id));

    // Bob's passkey cannot answer for alice: a wrong code, the token stays.
    let credential = bobs.get(&started["options"], &bobs.honest());
    let r = server
        .anon()
        .post(server.url("/v1/session/mfa"))
        .json(&json!({ "mfa_token": token, "ceremony_id": started["ceremony_id"], "credential": credential }))
        .send()
        .await
        .unwrap();
    let p = problem(r, 401).await;
    assert_eq!(p["type"], "urn:tessera:problem:invalid-code");

    // Her own passkey, for a new ceremony: signed in with both factors.
    let started: Value = start_second_factor(&server, &token)
        .await
        .json()
        .await
        .unwrap();
    let credential = key.get(&started["options"], &key.honest());
    let body = json!({ "mfa_token": token, "ceremony_id": started["ceremony_id"], "credential": credential });
    let r = server
        .anon()
        .post(server.url("/v1/session/mfa"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session: Value = r.json().await.unwrap();
    assert_eq!(session["user"]["username"], "alice");
    assert_eq!(session["session"]["amr"], json!(["pwd", "hwk", "mfa"]));
    // The same again: the token and the ceremony are spent.
    let r = server
        .anon()
        .post(server.url("/v1/session/mfa"))
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
    // Neither a code and a passkey together, nor half a passkey.
    let token = password_step(&server, "alice").await;
    for body in [
        json!({ "mfa_token": token }),
        json!({ "mfa_token": token, "code": "123456", "ceremony_id": started["ceremony_id"], "credential": {} }),
        json!({ "mfa_token": token, "ceremony_id": started["ceremony_id"] }),
    ] {
        let r = server
            .anon()
            .post(server.url("/v1/session/mfa"))
            .json(&body)
            .send()
            .await
            .unwrap();
        problem(r, 400).await;
    }
    // A made-up token starts nothing.
    problem(start_second_factor(&server, "garbage").await, 401).await;

    // The password grant finishes the same way, with the MFA grant.
    let r = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", common::PASSWORD),
        ])
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "mfa_required");
    let token = body["mfa_token"].as_str().unwrap().to_owned();
    let started: Value = start_second_factor(&server, &token)
        .await
        .json()
        .await
        .unwrap();
    let credential = key.get(&started["options"], &key.honest()).to_string();
    let ceremony_id = started["ceremony_id"].as_str().unwrap().to_owned();
    let r = server
        .token_request(&[
            ("grant_type", "urn:tessera:grant-type:mfa"),
            ("mfa_token", &token),
            ("ceremony_id", &ceremony_id),
            ("credential", &credential),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let payload = tokens["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims: Value = serde_json::from_slice(&common::authenticator::unb64(payload)).unwrap();
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]));
}

#[tokio::test]
async fn an_admin_sees_and_resets_passkeys() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    register(&server, &alice, "Laptop").await;
    register(&server, &alice, "Phone").await;
    let page: Value = server
        .admin(Method::GET, "/v1/admin/users")
        .await
        .json()
        .await
        .unwrap();
    let listed = &page["users"][0];
    assert_eq!(listed["mfa"]["passkeys"], 2);
    let id = listed["id"].as_str().unwrap();
    let r = server
        .admin(Method::DELETE, &format!("/v1/admin/users/{id}/mfa"))
        .await;
    assert_eq!(r.status(), 204);
    let list: Value = alice.get("/v1/me/passkeys").await.json().await.unwrap();
    assert!(list["passkeys"].as_array().unwrap().is_empty());
    // The password alone signs in again.
    server.sign_in("alice").await;
}

#[tokio::test]
async fn assertions_are_single_use_and_bound_to_their_challenge() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let (mut key, _) = register(&server, &alice, "Laptop").await;
    let body = signed_honest(&server, &mut key).await;
    let r = finish_sign_in(&server, "/v1/passkeys/authenticate/finish", &body).await;
    assert_eq!(r.status(), 200);
    // The same answer again: its ceremony is spent.
    refused(&server, &body).await;
    // The same answer for a new ceremony: the challenge differs.
    let fresh = start_sign_in(&server).await;
    refused(
        &server,
        &json!({ "ceremony_id": fresh["ceremony_id"], "credential": body["credential"] }),
    )
    .await;
    // A ceremony cannot be finished after a failed try either.
    let started = start_sign_in(&server).await;
    let mut forged = key.get(&started["options"], &key.honest());
    forged["response"]["signature"] = json!(b64(&[0x30, 0x06, 2, 1, 1, 2, 1, 1]));
    let body = json!({ "ceremony_id": started["ceremony_id"], "credential": forged });
    refused(&server, &body).await;
    let honest = key.get(&started["options"], &key.honest());
    refused(
        &server,
        &json!({ "ceremony_id": started["ceremony_id"], "credential": honest }),
    )
    .await;
}

#[tokio::test]
async fn forged_assertions_are_refused_alike() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let (mut key, _) = register(&server, &alice, "Laptop").await;
    let honest = key.honest();
    let wrong_before = sign_ins(&server, "wrong_credentials").await;

    let mut details = Vec::new();
    // A signature by another key.
    let mut other = SoftPasskey::new(&server.base);
    other.credential_id = key.credential_id.clone();
    other.user_handle = key.user_handle.clone();
    let body = signed(&server, &mut other, &honest).await;
    details.push(refused(&server, &body).await);
    // The wrong origin (a phishing site relaying the ceremony).
    let wrong_origin = Answer {
        origin: "https://evil.example".into(),
        ..honest.clone()
    };
    let body = signed(&server, &mut key, &wrong_origin).await;
    details.push(refused(&server, &body).await);
    // Another port of the same host is another origin.
    let other_port = Answer {
        origin: "http://localhost:1".into(),
        ..honest.clone()
    };
    let body = signed(&server, &mut key, &other_port).await;
    details.push(refused(&server, &body).await);
    // The wrong relying party id in the authenticator data.
    let wrong_rp = Answer {
        rp_id: "evil.example".into(),
        ..honest.clone()
    };
    let body = signed(&server, &mut key, &wrong_rp).await;
    details.push(refused(&server, &body).await);
    // No user verification: a passkey alone must be two factors.
    let no_uv = Answer {
        flags: UP,
        ..honest.clone()
    };
    let body = signed(&server, &mut key, &no_uv).await;
    details.push(refused(&server, &body).await);
    // A registration's client data presented for a sign-in.
    let wrong_type = Answer {
        client_data_type: Some("webauthn.create"),
        ..honest.clone()
    };
    let body = signed(&server, &mut key, &wrong_type).await;
    details.push(refused(&server, &body).await);
    // No user handle: nobody is named.
    let no_handle = Answer {
        user_handle: Some(None),
        ..honest.clone()
    };
    let body = signed(&server, &mut key, &no_handle).await;
    details.push(refused(&server, &body).await);
    // A credential nobody registered.
    let mut stranger = SoftPasskey::new(&server.base);
    stranger.user_handle = key.user_handle.clone();
    let body = signed_honest(&server, &mut stranger).await;
    details.push(refused(&server, &body).await);
    // Every refusal reads the same: nothing tells which check failed.
    assert!(details.windows(2).all(|w| w[0] == w[1]), "{details:?}");
    // ...and each counts as a failed sign-in.
    assert_eq!(
        sign_ins(&server, "wrong_credentials").await - wrong_before,
        details.len() as u64
    );
    let ok_before = sign_ins(&server, "ok").await;

    // The honest answer still works afterwards.
    let body = signed(&server, &mut key, &honest).await;
    let r = finish_sign_in(&server, "/v1/passkeys/authenticate/finish", &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(sign_ins(&server, "ok").await, ok_before + 1);
}

#[tokio::test]
async fn a_credential_answering_for_another_user_is_refused() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let bob = server.signed_in("bob").await;
    let (mut alices, _) = register(&server, &alice, "Alice's").await;
    let (bobs, _) = register(&server, &bob, "Bob's").await;
    // Alice's credential, signed correctly, but naming Bob.
    let as_bob = Answer {
        user_handle: Some(Some(bobs.user_handle.clone())),
        ..alices.honest()
    };
    let body = signed(&server, &mut alices, &as_bob).await;
    refused(&server, &body).await;
    // Neither can rename or remove the other's passkey.
    let bobs_list: Value = bob.get("/v1/me/passkeys").await.json().await.unwrap();
    let bobs_id = bobs_list["passkeys"][0]["id"].as_str().unwrap();
    problem(
        alice.delete(&format!("/v1/me/passkeys/{bobs_id}")).await,
        404,
    )
    .await;
    let r = alice
        .unsafe_req(Method::PATCH, &format!("/v1/me/passkeys/{bobs_id}"))
        .json(&json!({ "name": "mine" }))
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
    let bobs_list: Value = bob.get("/v1/me/passkeys").await.json().await.unwrap();
    assert_eq!(bobs_list["passkeys"][0]["name"], "Bob's");
}

#[tokio::test]
async fn a_signature_counter_going_back_is_refused() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let mut key = SoftPasskey::new(&server.base);
    key.counter = 5;
    let started = start_registration(&alice).await;
    let credential = key.create(&started["options"], &key.honest());
    let r = finish_registration(
        &alice,
        json!({ "ceremony_id": started["ceremony_id"], "name": "Key", "credential": credential }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let body = signed_honest(&server, &mut key).await;
    let r = finish_sign_in(&server, "/v1/passkeys/authenticate/finish", &body).await;
    assert_eq!(r.status(), 200);
    // A clone of the authenticator, behind the counter the server saw.
    key.counter = 3;
    let body = signed_honest(&server, &mut key).await;
    refused(&server, &body).await;
}

#[tokio::test]
async fn registration_is_bound_to_its_user_challenge_and_origin() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let bob = server.signed_in("bob").await;
    let mut key = SoftPasskey::new(&server.base);

    // Bob finishing Alice's ceremony.
    let started = start_registration(&alice).await;
    let credential = key.create(&started["options"], &key.honest());
    let body =
        json!({ "ceremony_id": started["ceremony_id"], "name": "K", "credential": credential });
    let p = problem(finish_registration(&bob, body.clone()).await, 400).await;
    assert_eq!(p["type"], "urn:tessera:problem:passkey-refused");
    // ...spent it: Alice cannot finish it either.
    problem(finish_registration(&alice, body).await, 400).await;

    for answer in [
        Answer {
            origin: "https://evil.example".into(),
            ..key.honest()
        },
        Answer {
            rp_id: "evil.example".into(),
            ..key.honest()
        },
        Answer {
            challenge: Some(b64(b"not the challenge")),
            ..key.honest()
        },
        Answer {
            flags: UP,
            ..key.honest()
        },
        Answer {
            client_data_type: Some("webauthn.get"),
            ..key.honest()
        },
    ] {
        let started = start_registration(&alice).await;
        let credential = key.create(&started["options"], &answer);
        let body =
            json!({ "ceremony_id": started["ceremony_id"], "name": "K", "credential": credential });
        let p = problem(finish_registration(&alice, body).await, 400).await;
        assert_eq!(
            p["type"], "urn:tessera:problem:passkey-refused",
            "{answer:?}"
        );
    }
    let list: Value = alice.get("/v1/me/passkeys").await.json().await.unwrap();
    assert!(list["passkeys"].as_array().unwrap().is_empty());

    // The same authenticator credential cannot be registered twice, nor to
    // another account.
    let (key, _) = register(&server, &alice, "Laptop").await;
    for user in [&alice, &bob] {
        let started = start_registration(user).await;
        let mut again = SoftPasskey::new(&server.base);
        again.credential_id = key.credential_id.clone();
        let credential = again.create(&started["options"], &again.honest());
        let body =
            json!({ "ceremony_id": started["ceremony_id"], "name": "K", "credential": credential });
        let p = problem(finish_registration(user, body).await, 400).await;
        assert_eq!(p["type"], "urn:tessera:problem:passkey-refused");
    }
}

#[tokio::test]
async fn ceremonies_expire_after_five_minutes() {
    let clock = tessera_core::clock::ManualClock::new(time::OffsetDateTime::now_utc());
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        localhost: true,
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let alice = server.signed_in("alice").await;
    let (mut key, _) = register(&server, &alice, "Laptop").await;
    let started = start_sign_in(&server).await;
    let credential = key.get(&started["options"], &key.honest());
    clock.advance(time::Duration::minutes(5) + time::Duration::seconds(1));
    refused(
        &server,
        &json!({ "ceremony_id": started["ceremony_id"], "credential": credential }),
    )
    .await;
}

#[tokio::test]
async fn a_registration_ceremony_does_not_sign_in() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let (mut key, _) = register(&server, &alice, "Laptop").await;
    // The options of a registration, answered as a sign-in.
    let started = start_registration(&alice).await;
    let credential = key.get(&started["options"], &key.honest());
    refused(
        &server,
        &json!({ "ceremony_id": started["ceremony_id"], "credential": credential }),
    )
    .await;
}

#[tokio::test]
async fn malformed_bodies_get_a_4xx_problem_never_a_500() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let (mut key, _) = register(&server, &alice, "Laptop").await;
    let started = start_sign_in(&server).await;
    let good = key.get(&started["options"], &key.honest());
    let id = started["ceremony_id"].clone();
    let mut cases: Vec<Value> = vec![
        json!({}),
        json!({ "ceremony_id": id }),
        json!({ "ceremony_id": "not-a-uuid", "credential": good }),
        json!({ "ceremony_id": id, "credential": "text" }),
        json!({ "ceremony_id": id, "credential": {} }),
        json!({ "ceremony_id": id, "credential": good, "extra": 1 }),
        json!([1, 2, 3]),
    ];
    for (field, value) in [
        ("rawId", json!("!!!not base64!!!")),
        ("rawId", json!(12)),
        ("type", json!(null)),
    ] {
        let mut c = good.clone();
        c[field] = value;
        cases.push(json!({ "ceremony_id": id, "credential": c }));
    }
    for (field, value) in [
        ("authenticatorData", json!(b64(b"short"))),
        ("authenticatorData", json!("***")),
        ("clientDataJSON", json!(b64(b"{not json"))),
        ("clientDataJSON", json!(b64(b"{}"))),
        ("signature", json!("")),
        ("userHandle", json!(b64(b"not a uuid"))),
    ] {
        let mut c = good.clone();
        c["response"][field] = value;
        cases.push(json!({ "ceremony_id": id, "credential": c }));
    }
    for body in &cases {
        for path in [
            "/v1/passkeys/authenticate/finish",
            "/v1/passkeys/authenticate/finish-token",
        ] {
            let r = finish_sign_in(&server, path, body).await;
            let status = r.status().as_u16();
            assert!((400..500).contains(&status), "{path} {body}: {status}");
            assert_eq!(
                r.headers()["content-type"],
                "application/problem+json",
                "{body}"
            );
        }
    }
    // Not JSON at all.
    for raw in ["{", "null", "\"x\"", "{\"ceremony_id\": 1}"] {
        let r = server
            .post_raw(
                "/v1/passkeys/authenticate/finish",
                Some("application/json"),
                raw,
            )
            .await;
        problem(r, 400).await;
    }
    // Registration: the same, signed in.
    let started = start_registration(&alice).await;
    let good = key.create(&started["options"], &key.honest());
    let id = started["ceremony_id"].clone();
    let mut broken_attestation = good.clone();
    broken_attestation["response"]["attestationObject"] = json!(b64(&[0xa1, 0x63]));
    for body in [
        json!({ "ceremony_id": id, "name": "K" }),
        json!({ "ceremony_id": id, "name": "", "credential": good }),
        json!({ "ceremony_id": id, "name": "a\nb", "credential": good }),
        json!({ "ceremony_id": id, "name": "x".repeat(65), "credential": good }),
        json!({ "ceremony_id": id, "name": "K", "credential": [] }),
        json!({ "ceremony_id": id, "name": "K", "credential": broken_attestation }),
    ] {
        let r = finish_registration(&alice, body.clone()).await;
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{body}: {status}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // A malformed passkey id in a path.
    let r = alice.delete("/v1/me/passkeys/not-an-id").await;
    let status = r.status().as_u16();
    assert!(status == 400 || status == 404, "{status}");
}

#[tokio::test]
async fn account_endpoints_need_a_signed_in_user_and_the_csrf_token() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    problem(
        server
            .anon()
            .get(server.url("/v1/me/passkeys"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    problem(
        server
            .anon()
            .post(server.url("/v1/me/passkeys/register/start"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    // The cookie without the CSRF token.
    let r = alice
        .client
        .post(alice.url("/v1/me/passkeys/register/start"))
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    // A foreign origin cannot start a sign-in ceremony either.
    let r = server
        .anon()
        .post(server.url("/v1/passkeys/authenticate/start"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    // A bearer token of the user's own (first-party) sign-in may.
    let tokens = server.tokens("alice").await;
    let r = server
        .anon()
        .post(server.url("/v1/me/passkeys/register/start"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn passkeys_are_unavailable_on_an_ip_address() {
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    let alice = server.signed_in("alice").await;
    let r = alice
        .unsafe_req(Method::POST, "/v1/me/passkeys/register/start")
        .send()
        .await
        .unwrap();
    let p = problem(r, 404).await;
    assert_eq!(p["type"], "urn:tessera:problem:passkeys-unavailable");
    let r = server
        .anon()
        .post(server.url("/v1/passkeys/authenticate/start"))
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
    // Listing still works (and is empty).
    assert_eq!(alice.get("/v1/me/passkeys").await.status(), 200);
}

/// The value of the `name` hidden input of the first form posting to
/// `action` on `html` (the account page's CSRF token).
fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_pages_load_the_script_under_a_csp_that_allows_it_only_from_here() {
    let server = server().await;
    let r = server
        .anon()
        .get(server.url("/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("Sign in with a passkey"));
    // One script, by URL, none inline.
    let tag = "<script src=\"";
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    let start = html.find(tag).unwrap() + tag.len();
    let src = html[start..].split('"').next().unwrap();
    assert!(
        src.starts_with("/assets/passkeys.") && src.ends_with(".js"),
        "{src}"
    );
    let script = server.anon().get(server.url(src)).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        script.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let body = script.text().await.unwrap();
    assert!(body.contains("navigator.credentials.get"));

    // Where passkeys cannot work, no page loads a script.
    let plain = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    let r = plain.anon().get(plain.url("/login")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("script-src"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script"));
    assert!(!html.contains("Sign in with a passkey"));
}

#[tokio::test]
async fn the_account_page_lists_renames_and_removes_passkeys_without_a_script() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let (_, view) = register(&server, &alice, "Laptop").await;
    let id = view["id"].as_str().unwrap();
    let page = alice.get("/account").await;
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Passkeys"));
    assert!(html.contains("Laptop"));
    assert!(html.contains("data-passkey=\"register\""));
    let csrf = hidden_value(&html, "csrf_token");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str, fields: Vec<(&str, String)>| {
        no_redirects
            .post(server.url(path))
            .header("cookie", format!("tessera={}", alice.cookie))
            .header("origin", server.base.clone())
            .form(&fields)
            .send()
    };
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();

    let r = post(
        "/account/passkeys/rename",
        vec![
            ("csrf_token", csrf.clone()),
            ("passkey", id.to_owned()),
            ("name", "Desk".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=passkey-renamed");
    let r = post(
        "/account/passkeys/rename",
        vec![
            ("csrf_token", csrf.clone()),
            ("passkey", id.to_owned()),
            ("name", " ".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(location(&r), "/account?done=passkey-name");
    // Without the CSRF token: refused, nothing changes.
    let r = post("/account/passkeys/remove", vec![("passkey", id.to_owned())])
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let list: Value = alice.get("/v1/me/passkeys").await.json().await.unwrap();
    assert_eq!(list["passkeys"][0]["name"], "Desk");

    let r = post(
        "/account/passkeys/remove",
        vec![("csrf_token", csrf.clone()), ("passkey", id.to_owned())],
    )
    .await
    .unwrap();
    assert_eq!(location(&r), "/account?done=passkey-removed");
    let r = post(
        "/account/passkeys/remove",
        vec![
            ("csrf_token", csrf.clone()),
            ("passkey", "not-an-id".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(location(&r), "/account?done=passkey-gone");
    let html = alice
        .get("/account?done=passkey-removed")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("The passkey was removed."));
    assert!(html.contains("You have no passkey yet."));
}

#[tokio::test]
async fn one_address_begins_a_bounded_number_of_sign_in_ceremonies() {
    let server = server().await;
    for _ in 0..tessera_core::passkeys::MAX_SIGN_IN_STARTS {
        start_sign_in(&server).await;
    }
    let r = server
        .anon()
        .post(server.url("/v1/passkeys/authenticate/start"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("retry-after").is_some());
    let p = problem(r, 429).await;
    assert_eq!(p["type"], "urn:tessera:problem:rate-limited");
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_with_a_passkey() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    let (mut key, _) = register(&server, &alice, "Laptop").await;
    let me: Value = alice.get("/v1/me").await.json().await.unwrap();
    let id = me["id"].as_str().unwrap();
    let r = server
        .admin(Method::POST, &format!("/v1/admin/users/{id}/disable"))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let body = signed_honest(&server, &mut key).await;
    refused(&server, &body).await;
    let body = signed_honest(&server, &mut key).await;
    let r = finish_sign_in(&server, "/v1/passkeys/authenticate/finish-token", &body).await;
    problem(r, 401).await;
}

#[tokio::test]
async fn the_second_step_page_offers_the_passkey_and_asks_no_code_without_totp() {
    let server = server().await;
    let alice = server.signed_in("alice").await;
    register(&server, &alice, "Laptop").await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_value(&html, "csrf_token");
    let r = browser
        .post(server.url("/login"))
        .header("origin", server.base.clone())
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "alice"),
            ("password", common::PASSWORD),
            ("return_to", "/account"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("Two-step verification"), "{html}");
    assert!(html.contains("data-passkey=\"second-factor\""));
    assert!(html.contains("Use a passkey"));
    assert!(!html.contains("name=\"code\""), "no code to ask alice for");
    // The token in the page starts the passkey ceremony for alice.
    let marker = "data-mfa-token=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let token = html[start..].split('"').next().unwrap();
    let r = start_second_factor(&server, token).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_third_party_applications_token_manages_no_passkey() {
    let server = server().await;
    let photos = common::oauth::client(&server, true, false).await;
    let b = common::oauth::browser(&server, "alice").await;
    let tokens = common::oauth::signed_in_tokens(&server, &photos, &b).await;
    let access = tokens["access_token"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, "/v1/me/passkeys"),
        (Method::POST, "/v1/me/passkeys/register/start"),
        (
            Method::DELETE,
            "/v1/me/passkeys/00000000-0000-4000-8000-000000000000",
        ),
    ] {
        let r = server
            .anon()
            .request(method, server.url(path))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        let body = problem(r, 403).await;
        assert_eq!(
            body["type"], "urn:tessera:problem:insufficient-scope",
            "{path}"
        );
    }
}
