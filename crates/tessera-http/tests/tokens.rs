//! Tokens over real HTTP: grants, bearer use, rotation, theft detection,
//! revocation, introspection, keys, and the classic JWT attacks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use jsonwebtoken::{Algorithm as JwtAlg, EncodingKey};
use reqwest::Method;
use serde_json::{Value, json};
use tessera_core::key_wrap;
use tessera_core::keys::{Algorithm, SigningKey};
use tessera_core::store::Keys;
use time::Duration;

#[tokio::test]
async fn password_grant_answers_an_rfc6749_pair() {
    let server = TestServer::start().await;
    server.register("alice").await;
    for json_body in [false, true] {
        let request = server.anon().post(server.url("/v1/token"));
        let fields = json!({ "grant_type": "password", "username": "Alice", "password": PASSWORD });
        let r = if json_body {
            request.json(&fields)
        } else {
            request.form(&[
                ("grant_type", "password"),
                ("username", "Alice"),
                ("password", PASSWORD),
            ])
        }
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["pragma"], "no-cache");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 600);
        assert!(body["refresh_token"].as_str().unwrap().starts_with("rt_"));
        let access = body["access_token"].as_str().unwrap();
        let header = jwt_part(access, 0);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "EdDSA");
        let claims = jwt_part(access, 1);
        assert_eq!(claims["iss"], server.base.as_str());
        assert_eq!(claims["aud"], server.base.as_str());
        assert_eq!(claims["sid"], body["session_id"]);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            600
        );
        assert_eq!(claims["roles"], json!([]));
        assert!(claims["jti"].as_str().unwrap().len() >= 16);
        uuid::Uuid::parse_str(claims["sub"].as_str().unwrap()).unwrap();
        let jwks: Value = server
            .anon()
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kid"] == header["kid"])
        );
    }
}

#[tokio::test]
async fn token_endpoint_errors_are_oauth_errors() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let wrong = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "not the password"),
        ])
        .await;
    let wrong = oauth_error(wrong, 400, "invalid_grant").await;
    let unknown = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "nobody"),
            ("password", "not the password"),
        ])
        .await;
    assert_eq!(
        oauth_error(unknown, 400, "invalid_grant").await,
        wrong,
        "no user enumeration"
    );
    oauth_error(server.token_request(&[]).await, 400, "invalid_request").await;
    oauth_error(
        server
            .token_request(&[("grant_type", "password"), ("username", "alice")])
            .await,
        400,
        "invalid_request",
    )
    .await;
    oauth_error(
        server
            .token_request(&[("grant_type", "client_credentials")])
            .await,
        400,
        "unsupported_grant_type",
    )
    .await;
    oauth_error(
        server
            .token_request(&[("grant_type", "refresh_token")])
            .await,
        400,
        "invalid_request",
    )
    .await;
    for garbage in [
        "x",
        "rt_",
        "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "ts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "' OR 1=1 --",
    ] {
        oauth_error(server.refresh(garbage).await, 400, "invalid_grant").await;
    }
    let r = server
        .post_raw("/v1/token", Some("application/json"), "{not json")
        .await;
    oauth_error(r, 400, "invalid_request").await;
    let r = server
        .post_raw("/v1/token", Some("text/plain"), "grant_type=password")
        .await;
    oauth_error(r, 415, "invalid_request").await;
    let r = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", &"x".repeat(70_000)),
        ])
        .await;
    oauth_error(r, 413, "invalid_request").await;
}

#[tokio::test]
async fn bearer_tokens_authenticate_without_csrf_and_show_beside_cookies() {
    let server = TestServer::start().await;
    let browser = server.signed_in("alice").await;
    let app = server.tokens("alice").await;
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    let list: Value = app
        .get_with(&app.access, "/v1/me/sessions")
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<(&str, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["kind"].as_str().unwrap(), s["current"].as_bool().unwrap()))
        .collect();
    assert_eq!(kinds.len(), 2);
    assert!(
        kinds.contains(&("token", true)) && kinds.contains(&("cookie", false)),
        "{kinds:?}"
    );
    // An unsafe bearer request needs no CSRF token (no ambient credential).
    let r = reqwest::Client::new()
        .delete(server.url(&format!("/v1/me/sessions/{}", browser.session_id)))
        .bearer_auth(&app.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(browser.get("/v1/me").await.status(), 401);
    // A bad Authorization header does not fall back to a cookie.
    let r = browser
        .client
        .get(browser.url("/v1/me"))
        .header("authorization", "Basic YWxpY2U6eA==")
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
}

#[tokio::test]
async fn revoking_a_token_session_refuses_its_access_token_on_the_next_request() {
    let server = TestServer::start().await;
    let browser = server.signed_in("alice").await;
    let app = server.tokens("alice").await;
    assert_eq!(app.me().await.status(), 200);
    let r = browser
        .delete(&format!("/v1/me/sessions/{}", app.session_id))
        .await;
    assert_eq!(r.status(), 204);
    problem(app.me().await, 401).await;
    oauth_error(server.refresh(&app.refresh).await, 400, "invalid_grant").await;
    assert!(
        server
            .state
            .core()
            .revocations
            .set()
            .is_revoked(&app.session_id, "-")
    );
}

#[tokio::test]
async fn refresh_rotates_and_replaced_tokens_work_only_within_the_grace_window() {
    let (server, clock) = TestServer::on_manual_clock().await;
    server.register("alice").await;
    let first = server.tokens("alice").await;
    let r = server.refresh(&first.refresh).await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first.refresh);
    assert_eq!(second["session_id"], first.session_id.as_str());
    assert_ne!(second["access_token"], first.access.as_str());

    // A parallel tab presenting the just-replaced token within the grace window.
    clock.advance(Duration::seconds(5));
    let r = server.refresh(&first.refresh).await;
    assert_eq!(r.status(), 200, "within grace");
    let third: Value = r.json().await.unwrap();
    let third_refresh = third["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(server.introspect(&third_refresh).await["active"], true);
    assert_eq!(
        server.introspect(&second_refresh).await["active"],
        false,
        "one current token only"
    );

    // After the grace window, the first token is a stolen one: the whole session goes.
    clock.advance(Duration::seconds(11));
    oauth_error(server.refresh(&first.refresh).await, 400, "invalid_grant").await;
    oauth_error(server.refresh(&third_refresh).await, 400, "invalid_grant").await;
    let access = third["access_token"].as_str().unwrap();
    problem(first.get_with(access, "/v1/me").await, 401).await;
    let audit: Value = server
        .admin(reqwest::Method::GET, "/v1/admin/audit")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["events"][0]["kind"], "token.refresh_reused");
    assert_eq!(
        audit["events"][0]["detail"]["session_id"],
        first.session_id.as_str()
    );
}

#[tokio::test]
async fn refresh_tokens_expire_when_idle() {
    let (server, clock) = TestServer::on_manual_clock().await;
    server.register("alice").await;
    let app = server.tokens("alice").await;
    clock.advance(Duration::days(13));
    let r = server.refresh(&app.refresh).await;
    assert_eq!(r.status(), 200, "used within the idle lifetime");
    let next: Value = r.json().await.unwrap();
    clock.advance(Duration::days(15));
    oauth_error(
        server
            .refresh(next["refresh_token"].as_str().unwrap())
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_never_leave_two_live_branches() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let app = server.tokens("alice").await;
    let attempts: Vec<_> = (0..12)
        .map(|_| {
            let client = server.anon();
            let url = server.url("/v1/token");
            let refresh = app.refresh.clone();
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                (status, body)
            })
        })
        .collect();
    let mut issued = Vec::new();
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        assert_eq!(status, 200, "all within the grace window: {body}");
        issued.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    let mut active = 0;
    for token in &issued {
        if server.introspect(token).await["active"] == true {
            active += 1;
        }
    }
    assert_eq!(active, 1, "exactly one current refresh token");
    let sessions: Value = app
        .get_with(&app.access, "/v1/me/sessions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions.as_array().unwrap().len(),
        1,
        "one session, not branches"
    );
}

#[tokio::test]
async fn revoke_endpoint_ends_the_session_of_either_token() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let by_refresh = server.tokens("alice").await;
    let by_access = server.tokens("alice").await;
    let revoke = |token: String| {
        let client = server.anon();
        let url = server.url("/v1/token/revoke");
        async move {
            client
                .post(url)
                .form(&[
                    ("token", token.as_str()),
                    ("token_type_hint", "refresh_token"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(revoke(by_refresh.refresh.clone()).await.status(), 200);
    problem(by_refresh.me().await, 401).await;
    oauth_error(
        server.refresh(&by_refresh.refresh).await,
        400,
        "invalid_grant",
    )
    .await;

    assert_eq!(revoke(by_access.access.clone()).await.status(), 200);
    problem(by_access.me().await, 401).await;
    oauth_error(
        server.refresh(&by_access.refresh).await,
        400,
        "invalid_grant",
    )
    .await;

    for garbage in [
        "garbage",
        "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "a.b.c",
    ] {
        assert_eq!(revoke(garbage.into()).await.status(), 200);
    }
    let r = server
        .anon()
        .post(server.url("/v1/token/revoke"))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn introspection_needs_a_credential_and_reports_rfc7662_fields() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let app = server.tokens("alice").await;
    let r = server
        .anon()
        .post(server.url("/v1/token/introspect"))
        .form(&[("token", app.access.as_str())])
        .send()
        .await
        .unwrap();
    oauth_error(r, 401, "invalid_client").await;
    let r = server
        .anon()
        .post(server.url("/v1/token/introspect"))
        .bearer_auth("wrong-secret-wrong-secret-wrong-secret")
        .form(&[("token", app.access.as_str())])
        .send()
        .await
        .unwrap();
    oauth_error(r, 401, "invalid_client").await;
    // A user's own access token is not an introspection credential.
    let r = server
        .anon()
        .post(server.url("/v1/token/introspect"))
        .bearer_auth(&app.access)
        .form(&[("token", app.access.as_str())])
        .send()
        .await
        .unwrap();
    oauth_error(r, 403, "insufficient_scope").await;

    let active = server.introspect(&app.access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["token_type"], "access_token");
    assert_eq!(active["sid"], app.session_id.as_str());
    for field in ["sub", "exp", "iat", "jti", "iss", "aud"] {
        assert!(active.get(field).is_some(), "{field}");
    }
    let refresh = server.introspect(&app.refresh).await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
    assert_eq!(refresh["username"], "alice");
    assert_eq!(
        server.introspect("garbage").await,
        json!({ "active": false })
    );
    // The admin token works too.
    let r = server
        .anon()
        .post(server.url("/v1/token/introspect"))
        .bearer_auth(ADMIN_TOKEN)
        .form(&[("token", app.access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Once revoked, inactive.
    server
        .anon()
        .post(server.url("/v1/token/revoke"))
        .form(&[("token", app.refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        server.introspect(&app.access).await,
        json!({ "active": false })
    );
    assert_eq!(
        server.introspect(&app.refresh).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn discovery_documents_describe_the_server() {
    let server = TestServer::start().await;
    let r = server
        .anon()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let config: Value = r.json().await.unwrap();
    assert_eq!(config["issuer"], server.base.as_str());
    assert_eq!(
        config["jwks_uri"],
        format!("{}/.well-known/jwks.json", server.base)
    );
    assert_eq!(
        config["token_endpoint"],
        format!("{}/v1/token", server.base)
    );
    assert_eq!(
        config["revocation_endpoint"],
        format!("{}/v1/token/revoke", server.base)
    );
    assert_eq!(
        config["introspection_endpoint"],
        format!("{}/v1/token/introspect", server.base)
    );
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["RS256", "EdDSA"])
    );
    let r = server
        .anon()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let jwks: Value = r.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["use"], "sig");
    assert!(key.get("d").is_none(), "no private part");
}

async fn server_with_algorithm(algorithm: Algorithm) -> TestServer {
    let mut core = cheap_hashing();
    core.algorithm = algorithm;
    TestServer::with(Options {
        core,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn every_algorithm_issues_verifiable_tokens_and_hs256_publishes_nothing() {
    for (algorithm, kty) in [
        (Algorithm::ES256, Some("EC")),
        (Algorithm::RS256, Some("RSA")),
        (Algorithm::HS256, None),
    ] {
        let server = server_with_algorithm(algorithm).await;
        server.register("alice").await;
        let app = server.tokens("alice").await;
        assert_eq!(jwt_part(&app.access, 0)["alg"], algorithm.as_str());
        assert_eq!(app.me().await.status(), 200, "{algorithm:?}");
        let jwks: Value = server
            .anon()
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match kty {
            Some(kty) => assert_eq!(jwks["keys"][0]["kty"], kty),
            None => assert_eq!(
                jwks["keys"],
                json!([]),
                "a shared secret is never published"
            ),
        }
    }
}

#[tokio::test]
async fn key_rotation_publishes_the_new_key_and_keeps_the_old_until_its_tokens_expire() {
    let (server, clock) = TestServer::on_manual_clock().await;
    server.register("alice").await;
    let before = server.tokens("alice").await;
    let old_kid = jwt_part(&before.access, 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = server
        .anon()
        .post(server.url("/v1/admin/keys/rotate"))
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
    let r = server
        .admin(reqwest::Method::POST, "/v1/admin/keys/rotate")
        .await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let kids = |jwks: Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let jwks: Value = server
        .anon()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kids(jwks), [new_kid.clone(), old_kid.clone()]);
    assert_eq!(
        before.me().await.status(),
        200,
        "tokens of the old key still verify"
    );
    let after = server.tokens("alice").await;
    assert_eq!(jwt_part(&after.access, 0)["kid"], new_kid.as_str());
    let listed: Value = server
        .admin(reqwest::Method::GET, "/v1/admin/keys")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[1]["current"], false);
    assert!(!listed.to_string().contains("private"));

    // Once every token of the old key has expired, it leaves the key set.
    clock.advance(Duration::minutes(12));
    server.state.core().signing_keys.reload().await.unwrap();
    let jwks: Value = server
        .anon()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kids(jwks), [new_kid]);
}

/// The server's current signing key, in clear, for forging tests.
async fn current_key(server: &TestServer) -> SigningKey {
    let stored = server
        .store
        .keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.retired_at.is_none())
        .unwrap();
    key_wrap::unseal(&server.kek, &stored).unwrap()
}

#[tokio::test]
async fn classic_jwt_attacks_are_refused() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let app = server.tokens("alice").await;
    let real_key = current_key(&server).await;
    let kid = real_key.kid.clone();
    let header = jwt_part(&app.access, 0);
    let claims = jwt_part(&app.access, 1);
    let real_signer = EncodingKey::from_ed_der(&real_key.private);
    let public_x = {
        let jwks: Value = server
            .anon()
            .get(server.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"][0]["x"].as_str().unwrap().to_owned()
    };
    // Sanity: the crafting helper makes tokens the server accepts.
    let genuine = craft_token(&header, &claims, Some((&real_signer, JwtAlg::EdDSA)));
    assert_eq!(
        app.get_with(&genuine, "/v1/me").await.status(),
        200,
        "crafting works"
    );

    let mut admin_claims = claims.clone();
    admin_claims["roles"] = json!(["admin"]);
    let tampered = {
        let forged = craft_token(&header, &admin_claims, None);
        let signature = app.access.rsplit('.').next().unwrap();
        format!("{forged}{signature}")
    };
    let attacker_key = {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        EncodingKey::from_ed_der(doc.as_ref())
    };
    let hs_with_public = EncodingKey::from_secret(public_x.as_bytes());
    let truncated = app.access[..app.access.len() - 10].to_owned();
    let mut expired_claims = claims.clone();
    expired_claims["iat"] = json!(claims["iat"].as_i64().unwrap() - 3600);
    expired_claims["exp"] = json!(claims["iat"].as_i64().unwrap() - 3000);
    let mut future_claims = claims.clone();
    future_claims["nbf"] = json!(claims["iat"].as_i64().unwrap() + 3600);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("https://other.example");
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    let mut string_exp = claims.clone();
    string_exp["exp"] = json!("99999999999");
    let mut long_lived = claims.clone();
    long_lived["exp"] = json!(claims["iat"].as_i64().unwrap() + 86_400 * 365);
    let mut no_sid = claims.clone();
    no_sid.as_object_mut().unwrap().remove("sid");
    let with = |extra: Value| {
        let mut h = header.clone();
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    let signed = |h: &Value, c: &Value| craft_token(h, c, Some((&real_signer, JwtAlg::EdDSA)));

    let attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            craft_token(
                &json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
                &admin_claims,
                None,
            ),
        ),
        (
            "alg None",
            craft_token(
                &json!({"alg": "None", "typ": "at+jwt", "kid": kid}),
                &claims,
                None,
            ),
        ),
        (
            "HS256 keyed with the public key",
            craft_token(
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
                &admin_claims,
                Some((&hs_with_public, JwtAlg::HS256)),
            ),
        ),
        ("tampered payload", tampered),
        (
            "attacker key with the real kid",
            craft_token(&header, &admin_claims, Some((&attacker_key, JwtAlg::EdDSA))),
        ),
        (
            "kid path traversal",
            craft_token(
                &with(json!({"kid": "../../../../etc/passwd"})),
                &claims,
                Some((&attacker_key, JwtAlg::EdDSA)),
            ),
        ),
        (
            "kid SQL injection",
            signed(&with(json!({"kid": "' OR '1'='1"})), &claims),
        ),
        (
            "missing kid",
            signed(&json!({"alg": "EdDSA", "typ": "at+jwt"}), &claims),
        ),
        (
            "jku injection",
            signed(
                &with(json!({"jku": "https://evil.example/jwks.json"})),
                &claims,
            ),
        ),
        (
            "x5u injection",
            signed(
                &with(json!({"x5u": "https://evil.example/cert.pem"})),
                &claims,
            ),
        ),
        (
            "embedded jwk",
            signed(
                &with(json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": public_x}})),
                &claims,
            ),
        ),
        (
            "crit header",
            signed(&with(json!({"crit": ["exp"]})), &claims),
        ),
        ("wrong typ", signed(&with(json!({"typ": "JWT"})), &claims)),
        ("expired", signed(&header, &expired_claims)),
        ("not yet valid", signed(&header, &future_claims)),
        ("wrong audience", signed(&header, &wrong_aud)),
        ("wrong issuer", signed(&header, &wrong_iss)),
        ("string exp", signed(&header, &string_exp)),
        ("lifetime beyond policy", signed(&header, &long_lived)),
        ("no sid", signed(&header, &no_sid)),
        ("truncated signature", truncated),
        (
            "two parts",
            app.access.rsplit_once('.').unwrap().0.to_owned(),
        ),
        ("four parts", format!("{}.x", app.access)),
        ("oversized", format!("{}{}", app.access, "A".repeat(9000))),
        ("padding", format!("{}=", app.access)),
        ("garbage", "not.a.token".into()),
    ];
    for (name, token) in attacks {
        let r = app.get_with(&token, "/v1/me").await;
        assert_eq!(r.status(), 401, "{name} was accepted");
        problem(r, 401).await;
        assert_eq!(
            server.introspect(&token).await["active"],
            false,
            "{name} introspects active"
        );
    }
}

#[tokio::test]
async fn revocation_feed_pages_and_streams() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let first = server.tokens("alice").await;
    let second = server.tokens("alice").await;
    let r = server
        .anon()
        .get(server.url("/v1/revocations"))
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
    let page = |since: i64| {
        let client = server.anon();
        let url = server.url(&format!("/v1/revocations?since={since}"));
        async move {
            let r = client
                .get(url)
                .bearer_auth(INTROSPECTION_SECRET)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(page(0).await["revocations"], json!([]));

    let mut stream = server
        .anon()
        .get(server.url("/v1/revocations?since=0"))
        .bearer_auth(INTROSPECTION_SECRET)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    server
        .anon()
        .post(server.url("/v1/token/revoke"))
        .form(&[("token", first.refresh.as_str())])
        .send()
        .await
        .unwrap();
    let listed = page(0).await;
    let entries = listed["revocations"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kind"], "sid");
    assert_eq!(entries[0]["value"], first.session_id.as_str());
    let cursor = listed["cursor"].as_i64().unwrap();
    assert_eq!(page(cursor).await["revocations"], json!([]));

    // The stream delivers the revocation as it happens.
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !received.contains(&first.session_id) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("no event within 5 s")
            .unwrap()
            .unwrap();
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(received.contains("event: revocation"), "{received}");
    assert!(
        received.find("event: synced") < received.find("event: revocation"),
        "the backlog (empty here) ends with `synced`, before live entries: {received}"
    );
    server
        .anon()
        .post(server.url("/v1/token/revoke"))
        .form(&[("token", second.access.as_str())])
        .send()
        .await
        .unwrap();
    while !received.contains(&second.session_id) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("no event within 5 s")
            .unwrap()
            .unwrap();
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    for bad in ["since=-1", "since=abc"] {
        let r = server
            .anon()
            .get(server.url(&format!("/v1/revocations?{bad}")))
            .bearer_auth(INTROSPECTION_SECRET)
            .send()
            .await
            .unwrap();
        problem(r, 400).await;
    }
}

#[tokio::test]
async fn password_change_and_disable_revoke_access_tokens_at_once() {
    let server = TestServer::start().await;
    server.register("alice").await;
    let phone = server.tokens("alice").await;
    let laptop = server.tokens("alice").await;
    let r = reqwest::Client::new()
        .request(Method::POST, server.url("/v1/me/password"))
        .bearer_auth(&laptop.access)
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    problem(phone.me().await, 401).await;
    assert_eq!(
        laptop.me().await.status(),
        200,
        "the caller's own session stays"
    );

    let me: Value = laptop.me().await.json().await.unwrap();
    let r = server
        .admin(
            reqwest::Method::POST,
            &format!("/v1/admin/users/{}/disable", me["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status(), 204);
    problem(laptop.me().await, 401).await;
    oauth_error(server.refresh(&laptop.refresh).await, 400, "invalid_grant").await;
}
