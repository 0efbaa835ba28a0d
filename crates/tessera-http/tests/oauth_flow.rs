//! The authorization-code flow with PKCE end to end over HTTP: sign-in,
//! consent, code, exchange, ID token; and the hostile cases (wrong
//! verifier, `plain`, code reuse, expiry, redirect mismatch, cross-client
//! codes, repeated parameters, `prompt=none`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::oauth::{
    App, CHALLENGE, REDIRECT, VERIFIER, authorize_path, browser, client, consent_and_code,
    exchange, form_fields, get, location, query_of, signed_in_tokens, urlencode,
};
use common::{ADMIN_TOKEN, PASSWORD, TestServer, jwt_part, oauth_error};
use serde_json::{Value, json};

#[tokio::test]
async fn a_public_client_signs_a_user_in_with_pkce() {
    let server = TestServer::start().await;
    let app = client(&server, true, false).await;
    let b = browser(&server, "alice").await;
    let code = consent_and_code(&server, &b, &authorize_path(&app.id, "")).await;
    assert!(code.starts_with("ac_"));
    let r = exchange(&server, &app, &code, VERIFIER).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["scope"], "openid profile");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = jwt_part(access, 1);
    assert_eq!(claims["client_id"], app.id.as_str());
    assert_eq!(claims["scope"], "openid profile");
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = jwt_part(id_token, 0);
    assert_eq!(header["typ"], "JWT");
    // RS256 by default, whatever signs access tokens (EdDSA here).
    assert_eq!(header["alg"], "RS256");
    assert_eq!(jwt_part(access, 0)["alg"], "EdDSA");
    let id = jwt_part(id_token, 1);
    assert_eq!(id["iss"], server.base.as_str());
    assert_eq!(id["aud"], app.id.as_str());
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["sid"], tokens["session_id"]);
    assert_eq!(id["sub"], claims["sub"]);
    assert!(id["auth_time"].as_i64().unwrap() <= id["iat"].as_i64().unwrap());
    // at_hash: the left half of SHA-256 (RS256).
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    assert_eq!(
        id["at_hash"],
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
    );

    // The session is an ordinary token session: the access token works,
    // the refresh token rotates and keeps client and scope.
    let me = reqwest::Client::new()
        .get(server.url("/v1/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let r = server
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    let claims = jwt_part(refreshed["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["client_id"], app.id.as_str());
    assert_eq!(claims["scope"], "openid profile");

    // Consent is remembered: the next request goes straight back.
    let r = b
        .get(server.url(&authorize_path(&app.id, "")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with(REDIRECT));
    // prompt=consent asks again.
    let r = b
        .get(server.url(&authorize_path(&app.id, "&prompt=consent")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Removing the client ends its sessions.
    let path = format!("/v1/admin/clients/{}", app.id);
    assert_eq!(
        server.admin(reqwest::Method::DELETE, &path).await.status(),
        204
    );
    let me = reqwest::Client::new()
        .get(server.url("/v1/userinfo"))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
}

#[tokio::test]
async fn confidential_clients_authenticate_by_basic_or_post() {
    let server = TestServer::start().await;
    let app = client(&server, false, true).await;
    let b = browser(&server, "bob").await;
    // skip_consent: straight back with a code.
    let code = consent_and_code(&server, &b, &authorize_path(&app.id, "")).await;
    let r = server
        .anon()
        .post(server.url("/v1/token"))
        .basic_auth(&app.id, app.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let code = consent_and_code(&server, &b, &authorize_path(&app.id, "")).await;
    assert_eq!(exchange(&server, &app, &code, VERIFIER).await.status(), 200);

    // Without the secret, or with a wrong one: invalid_client, and the code is not spent.
    let code = consent_and_code(&server, &b, &authorize_path(&app.id, "")).await;
    let bare = App {
        id: app.id.clone(),
        secret: None,
    };
    oauth_error(
        exchange(&server, &bare, &code, VERIFIER).await,
        401,
        "invalid_client",
    )
    .await;
    let wrong = App {
        id: app.id.clone(),
        secret: Some(format!("cs_{}", "A".repeat(43))),
    };
    oauth_error(
        exchange(&server, &wrong, &code, VERIFIER).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(exchange(&server, &app, &code, VERIFIER).await.status(), 200);
}

#[tokio::test]
async fn hostile_exchanges_are_refused() {
    let (server, clock) = TestServer::on_manual_clock().await;
    let app = client(&server, true, true).await;
    let other = client(&server, true, true).await;
    let b = browser(&server, "carol").await;
    let path = authorize_path(&app.id, "");

    // Wrong verifier: refused, and the code is spent.
    let code = consent_and_code(&server, &b, &path).await;
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
    oauth_error(
        exchange(&server, &app, &code, wrong).await,
        400,
        "invalid_grant",
    )
    .await;
    oauth_error(
        exchange(&server, &app, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    // `plain`: the challenge itself as verifier.
    let code = consent_and_code(&server, &b, &path).await;
    oauth_error(
        exchange(&server, &app, &code, CHALLENGE).await,
        400,
        "invalid_grant",
    )
    .await;

    // Reuse: the second use fails and revokes what the first issued.
    let code = consent_and_code(&server, &b, &path).await;
    let r = exchange(&server, &app, &code, VERIFIER).await;
    let tokens: Value = r.json().await.unwrap();
    oauth_error(
        exchange(&server, &app, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    let r = server
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    oauth_error(r, 400, "invalid_grant").await;

    // Cross-client: another client's code.
    let code = consent_and_code(&server, &b, &path).await;
    oauth_error(
        exchange(&server, &other, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;

    // Redirect mismatch at the exchange.
    let code = consent_and_code(&server, &b, &path).await;
    let r = server
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example/other"),
            ("code_verifier", VERIFIER),
            ("client_id", &app.id),
        ])
        .await;
    oauth_error(r, 400, "invalid_grant").await;

    // Expired: 61 s later.
    let code = consent_and_code(&server, &b, &path).await;
    clock.advance(time::Duration::seconds(61));
    oauth_error(
        exchange(&server, &app, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;

    // Missing parameters and garbage codes: clear 4xx.
    for fields in [
        vec![("grant_type", "authorization_code")],
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", app.id.as_str()),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", app.id.as_str()),
            ("code", "garbage"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", "not-a-client"),
            ("code", "garbage"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    ] {
        let r = server.token_request(&fields).await;
        assert!(r.status().is_client_error(), "{fields:?}: {}", r.status());
    }
}

#[tokio::test]
async fn hostile_authorization_requests_never_redirect_anywhere_unregistered() {
    let server = TestServer::start().await;
    let app = client(&server, true, false).await;
    let b = browser(&server, "dave").await;

    // Unknown client, unregistered redirect, repeated parameters: a 400 page.
    for path in [
        authorize_path("00000000-0000-0000-0000-000000000000", ""),
        authorize_path("not-a-uuid", ""),
        authorize_path(&app.id, "")
            .replace(&urlencode(REDIRECT), &urlencode("https://evil.example/cb")),
        authorize_path(&app.id, "").replace(
            &urlencode(REDIRECT),
            &urlencode("https://app.example/cb/../x"),
        ),
        authorize_path(&app.id, "").replace(
            &urlencode(REDIRECT),
            &urlencode("https://app.example/cb?x=1"),
        ),
        authorize_path(
            &app.id,
            &format!("&redirect_uri={}", urlencode("https://evil.example/")),
        ),
        authorize_path(&app.id, &format!("&client_id={}", app.id)),
        "/v1/authorize".to_owned(),
        "/v1/authorize?client_id=%00".to_owned(),
    ] {
        let r = b.get(server.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert!(r.headers().get("location").is_none());
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }

    // Other errors go back to the client with error, state and iss.
    for (extra, error) in [
        ("&code_challenge_method=plain", "invalid_request"),
        ("&scope=admin", "invalid_scope"),
        ("&prompt=none%20login", "invalid_request"),
        ("&max_age=soon", "invalid_request"),
    ] {
        let path = authorize_path(&app.id, "").replace("&code_challenge_method=S256", "") + extra;
        let path = if extra.starts_with("&code_challenge_method") {
            path
        } else {
            format!("{path}&code_challenge_method=S256")
        };
        let path = if extra == "&scope=admin" {
            path.replace("&scope=openid%20profile", "")
        } else {
            path
        };
        let r = b.get(server.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 302, "{path}");
        let q = query_of(&location(&r));
        assert_eq!(get(&q, "error"), Some(error), "{path}");
        assert_eq!(get(&q, "state"), Some("xyz"));
        assert_eq!(get(&q, "iss"), Some(server.base.as_str()));
    }
    let no_pkce = authorize_path(&app.id, "").replace(&format!("&code_challenge={CHALLENGE}"), "");
    let r = b.get(server.url(&no_pkce)).send().await.unwrap();
    assert_eq!(
        get(&query_of(&location(&r)), "error"),
        Some("invalid_request")
    );
    let token = authorize_path(&app.id, "").replace("response_type=code", "response_type=token");
    let r = b.get(server.url(&token)).send().await.unwrap();
    assert_eq!(
        get(&query_of(&location(&r)), "error"),
        Some("unsupported_response_type")
    );

    // Consent needed but prompt=none: consent_required; denial: access_denied.
    let r = b
        .get(server.url(&authorize_path(&app.id, "&prompt=none")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&query_of(&location(&r)), "error"),
        Some("consent_required")
    );
    let r = b
        .get(server.url(&authorize_path(&app.id, "")))
        .send()
        .await
        .unwrap();
    let mut fields = form_fields(&r.text().await.unwrap());
    fields.push(("decision".into(), "deny".into()));
    let r = b
        .post(server.url("/v1/authorize"))
        .header("origin", &server.base)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&query_of(&location(&r)), "error"),
        Some("access_denied")
    );
    // The consent form without its CSRF token is refused.
    let forged: Vec<_> = fields
        .iter()
        .filter(|(n, _)| n != "csrf_token")
        .cloned()
        .collect();
    let r = b
        .post(server.url("/v1/authorize"))
        .header("origin", &server.base)
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Signed out: to the sign-in page and back; prompt=none: login_required.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anon
        .get(server.url(&authorize_path(&app.id, "")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(
        loc.starts_with("/login?return_to=%2Fv1%2Fauthorize")
            || loc.starts_with("/login?return_to=/v1/authorize"),
        "{loc}"
    );
    let r = anon
        .get(server.url(&authorize_path(&app.id, "&prompt=none")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&query_of(&location(&r)), "error"),
        Some("login_required")
    );
    // prompt=login while signed in: the sign-in form, even so.
    let r = b
        .get(server.url(&authorize_path(&app.id, "&prompt=login")))
        .send()
        .await
        .unwrap();
    let loc = location(&r);
    assert!(
        loc.ends_with("&prompt=login") && !loc.contains("prompt%3Dlogin"),
        "{loc}"
    );
    let r = b.get(server.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_password_grant_can_be_switched_off() {
    let server = TestServer::with(common::Options {
        core: tessera_core::TesseraConfig {
            password_grant: false,
            ..common::cheap_hashing()
        },
        ..common::Options::default()
    })
    .await;
    server.register("erin").await;
    let r = server
        .token_request(&[
            ("grant_type", "password"),
            ("username", "erin"),
            ("password", PASSWORD),
        ])
        .await;
    oauth_error(r, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn discovery_and_userinfo() {
    let server = TestServer::start().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let d: Value = server
            .anon()
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(d["issuer"], server.base.as_str());
        assert_eq!(d["authorization_endpoint"], server.url("/v1/authorize"));
        assert_eq!(d["token_endpoint"], server.url("/v1/token"));
        assert_eq!(d["userinfo_endpoint"], server.url("/v1/userinfo"));
        assert_eq!(d["response_types_supported"], json!(["code"]));
        assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            d["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_basic", "client_secret_post"])
        );
    }
    let app = client(&server, true, true).await;
    let b = browser(&server, "frank").await;
    let code = consent_and_code(&server, &b, &authorize_path(&app.id, "")).await;
    let tokens: Value = exchange(&server, &app, &code, VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    let info: Value = reqwest::Client::new()
        .get(server.url("/v1/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["preferred_username"], "frank");
    assert_eq!(
        info["sub"],
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"]
    );
    // Scope openid alone: no username.
    let code = consent_and_code(
        &server,
        &b,
        &authorize_path(&app.id, "").replace("scope=openid%20profile", "scope=openid"),
    )
    .await;
    let tokens: Value = exchange(&server, &app, &code, VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    assert!(tokens["id_token"].is_string());
    let info: Value = reqwest::Client::new()
        .get(server.url("/v1/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info.get("preferred_username").is_none(), "{info}");
    let r = reqwest::Client::new()
        .get(server.url("/v1/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Browsers hold the redirects that follow a form post to the page's
/// `form-action`: the sign-in page of an authorization request must allow
/// the client's registered redirect origin, and only that one.
#[tokio::test]
async fn the_sign_in_page_lets_its_form_lead_on_to_the_client_only() {
    let server = TestServer::start().await;
    let app = client(&server, true, true).await;
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let csp_of = |path: String| {
        let anon = anon.clone();
        let url = server.url(&path);
        async move {
            let r = anon.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let back = authorize_path(&app.id, "");
    let csp = csp_of(format!("/login?return_to={}", urlencode(&back))).await;
    assert!(
        csp.contains("form-action 'self' https://app.example;"),
        "{csp}"
    );
    // An unregistered redirect URI, an unknown client, another path: no
    // other origin is allowed.
    let evil = back.replace(&urlencode(REDIRECT), &urlencode("https://evil.example/cb"));
    let unknown = authorize_path(&uuid::Uuid::new_v4().to_string(), "");
    for path in [evil, unknown, "/account".to_owned()] {
        let csp = csp_of(format!("/login?return_to={}", urlencode(&path))).await;
        assert!(csp.contains("form-action 'self';"), "{path}: {csp}");
    }
    let csp = csp_of("/login".to_owned()).await;
    assert!(csp.contains("form-action 'self';"), "{csp}");
}

async fn register_with_alg(server: &TestServer, alg: &str) -> reqwest::Response {
    server
        .anon()
        .post(server.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": "Typed",
            "redirect_uris": [REDIRECT],
            "public": true,
            "skip_consent": true,
            "id_token_signed_response_alg": alg,
        }))
        .send()
        .await
        .unwrap()
}

async fn jwks_kids(server: &TestServer) -> Vec<(String, String)> {
    let jwks: Value = server
        .anon()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["alg"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn id_tokens_are_rs256_unless_the_client_registered_the_configured_algorithm() {
    let server = TestServer::start().await;
    let doc: Value = server
        .anon()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256", "EdDSA"])
    );
    assert_eq!(
        doc["access_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{}/v1/logout", server.base)
    );

    assert!(
        jwks_kids(&server)
            .await
            .iter()
            .all(|(_, alg)| alg == "EdDSA")
    );
    let default = client(&server, true, true).await;
    // Registering the client made the key its ID tokens will need, so a
    // relying party fetching the JWKS now already finds it.
    let published = jwks_kids(&server).await;
    assert!(
        published.iter().any(|(_, alg)| alg == "RS256"),
        "{published:?}"
    );
    let b = browser(&server, "erin").await;
    let tokens = signed_in_tokens(&server, &default, &b).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let rs_kid = jwt_part(id_token, 0)["kid"].as_str().unwrap().to_owned();
    let kids = jwks_kids(&server).await;
    assert!(
        kids.contains(&(rs_kid.clone(), "RS256".to_owned())),
        "{kids:?}"
    );
    // The ID-token key never passes for an access key.
    let me = reqwest::Client::new()
        .get(server.url("/v1/me"))
        .bearer_auth(id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);

    // A client may register the configured algorithm, not another one.
    let r = register_with_alg(&server, "EdDSA").await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let typed = App {
        id: body["client_id"].as_str().unwrap().to_owned(),
        secret: None,
    };
    for refused in ["ES256", "HS256", "none", "rs256"] {
        assert_eq!(
            register_with_alg(&server, refused).await.status(),
            400,
            "{refused}"
        );
    }
    let tokens = signed_in_tokens(&server, &typed, &b).await;
    let header = jwt_part(tokens["id_token"].as_str().unwrap(), 0);
    assert_eq!(header["alg"], "EdDSA");
    let access = tokens["access_token"].as_str().unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, access.as_bytes());
    assert_eq!(
        jwt_part(tokens["id_token"].as_str().unwrap(), 1)["at_hash"],
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..32])
    );

    // Rotation renews both keys; the old ones stay published.
    let r = server
        .admin(reqwest::Method::POST, "/v1/admin/keys/rotate")
        .await;
    assert_eq!(r.status(), 200);
    let tokens = signed_in_tokens(&server, &default, &b).await;
    let new_kid = jwt_part(tokens["id_token"].as_str().unwrap(), 0)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, rs_kid);
    let kids = jwks_kids(&server).await;
    assert!(kids.contains(&(new_kid, "RS256".to_owned())), "{kids:?}");
    assert!(kids.contains(&(rs_kid, "RS256".to_owned())), "{kids:?}");
    assert_eq!(kids.iter().filter(|(_, alg)| alg == "EdDSA").count(), 2);
}

/// The status of `GET /v1/session` for browser `b`: 200 while signed in.
async fn session_status(server: &TestServer, b: &reqwest::Client) -> reqwest::StatusCode {
    b.get(server.url("/v1/session"))
        .send()
        .await
        .unwrap()
        .status()
}

fn logout_path(params: &[(&str, &str)]) -> String {
    format!(
        "/v1/logout?{}",
        serde_urlencoded::to_string(params).unwrap()
    )
}

const BYE: &str = "https://app.example/bye";

#[tokio::test]
async fn an_application_signs_the_user_out_with_its_id_token() {
    let server = TestServer::start().await;
    let app = client(&server, true, true).await;
    let b = browser(&server, "frank").await;
    let tokens = signed_in_tokens(&server, &app, &b).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let r = b
        .get(server.url(&logout_path(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", BYE),
            ("state", "s-1"),
        ])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{BYE}?state=s-1"));
    // The application's session and this browser's both ended.
    let r = server.refresh(refresh).await;
    oauth_error(r, 400, "invalid_grant").await;
    let me = reqwest::Client::new()
        .get(server.url("/v1/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    assert_eq!(session_status(&server, &b).await, 401);

    // Without a redirect address: the signed-out notice. The same hint
    // again (its session is gone) changes nothing and still signs out.
    let r = b
        .get(server.url(&logout_path(&[("id_token_hint", id_token)])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?notice=signed-out");

    // POST with a form works the same.
    let b = browser(&server, "frank2").await;
    let tokens = signed_in_tokens(&server, &app, &b).await;
    let r = b
        .post(server.url("/v1/logout"))
        .form(&[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", BYE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), BYE);
    let r = server
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    oauth_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn hostile_logout_requests_get_an_error_page_and_end_nothing() {
    let server = TestServer::start().await;
    let app = client(&server, true, true).await;
    let other = client(&server, true, true).await;
    let b = browser(&server, "gina").await;
    let tokens = signed_in_tokens(&server, &app, &b).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap();
    // A signature character well inside (the last one holds padding bits).
    let mut forged: Vec<char> = id_token.chars().collect();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    let (head, _) = id_token.rsplit_once('.').unwrap();
    let unsigned = format!("{head}.");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        // Not registered for the client, or for no client at all.
        vec![
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        vec![
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", "https://app.example/bye/"),
        ],
        vec![
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", "https://app.example/cb"),
        ],
        vec![("post_logout_redirect_uri", BYE)],
        // Hints that are not our ID tokens, or name another client.
        vec![
            ("id_token_hint", &forged),
            ("post_logout_redirect_uri", BYE),
        ],
        vec![("id_token_hint", &unsigned)],
        vec![("id_token_hint", access)],
        vec![("id_token_hint", "not a token")],
        vec![("id_token_hint", &id_token), ("client_id", &other.id)],
        vec![("client_id", "not-a-uuid")],
        vec![("client_id", "00000000-0000-0000-0000-000000000000")],
        // A parameter twice.
        vec![("client_id", &app.id), ("client_id", &app.id)],
    ];
    for case in &cases {
        let r = b.get(server.url(&logout_path(case))).send().await.unwrap();
        assert_eq!(r.status(), 400, "{case:?}");
        assert!(r.headers().get("location").is_none(), "{case:?}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("This sign-out link is broken"),
            "{case:?}: {html}"
        );
    }
    // Nothing ended.
    assert_eq!(session_status(&server, &b).await, 200);
    let r = server
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_logout_request_without_a_hint_asks_the_signed_in_user_first() {
    let server = TestServer::start().await;
    let app = client(&server, true, true).await;
    let b = browser(&server, "hank").await;
    let path = logout_path(&[
        ("client_id", &app.id),
        ("post_logout_redirect_uri", BYE),
        ("state", "s-2"),
    ]);
    let r = b.get(server.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' https://app.example;"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Photos</strong> asks you to sign out"),
        "{html}"
    );
    // Asking signed nobody out.
    assert_eq!(session_status(&server, &b).await, 200);
    let fields = form_fields(&html);
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "csrf_token",
            "client_id",
            "post_logout_redirect_uri",
            "state"
        ]
    );

    // A changed address is refused and signs nobody out.
    let tampered: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| {
            let v = if n == "post_logout_redirect_uri" {
                "https://evil.example/"
            } else {
                v
            };
            (n.clone(), v.to_owned())
        })
        .collect();
    let r = b
        .post(server.url("/logout"))
        .header("origin", &server.base)
        .form(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert_eq!(session_status(&server, &b).await, 200);
    // Without the CSRF token: refused.
    let no_token: Vec<(String, String)> = fields
        .iter()
        .filter(|(n, _)| n != "csrf_token")
        .cloned()
        .collect();
    let r = b
        .post(server.url("/logout"))
        .header("origin", &server.base)
        .form(&no_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(session_status(&server, &b).await, 200);

    let r = b
        .post(server.url("/logout"))
        .header("origin", &server.base)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{BYE}?state=s-2"));
    assert_eq!(session_status(&server, &b).await, 401);

    // Signed out already: straight back to the registered address.
    let r = b.get(server.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{BYE}?state=s-2"));
}

/// A token an application got through the consent page is for its own use
/// of the sign-in: it manages nothing of the account. A first-party
/// client's (no consent page) may, as a cookie session may.
#[tokio::test]
async fn an_applications_token_cannot_manage_the_account_a_first_party_one_can() {
    let server = TestServer::start().await;
    let third = client(&server, true, false).await;
    let first = client(&server, true, true).await;
    let b = browser(&server, "ivy").await;
    let app = signed_in_tokens(&server, &third, &b).await;
    let own = signed_in_tokens(&server, &first, &b).await;
    let access = app["access_token"].as_str().unwrap();
    let session = app["session_id"].as_str().unwrap();
    let anon = reqwest::Client::new();
    let attempts = [
        anon.get(server.url("/v1/me")),
        anon.get(server.url("/v1/me/sessions")),
        anon.delete(server.url("/v1/me/sessions?scope=others")),
        anon.delete(server.url(&format!("/v1/me/sessions/{session}"))),
        anon.post(server.url("/v1/me/password")).json(&json!({
            "current_password": PASSWORD,
            "new_password": "another long passphrase here",
        })),
        anon.get(server.url("/v1/me/consents")),
        anon.delete(server.url(&format!("/v1/me/consents/{}", third.id))),
        anon.get(server.url("/v1/me/mfa")),
        anon.post(server.url("/v1/me/mfa/totp")),
        anon.post(server.url("/v1/me/mfa/totp/confirm"))
            .json(&json!({ "code": "123456" })),
        anon.delete(server.url("/v1/me/mfa/totp"))
            .json(&json!({ "password": PASSWORD })),
        anon.post(server.url("/v1/me/mfa/recovery-codes")),
    ];
    for attempt in attempts {
        let r = attempt.bearer_auth(access).send().await.unwrap();
        let what = r.url().to_string();
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"tessera\", error=\"insufficient_scope\"",
            "{what}"
        );
        let body = common::problem(r, 403).await;
        assert_eq!(
            body["type"], "urn:tessera:problem:insufficient-scope",
            "{what}"
        );
    }
    // Nothing changed: the same tokens work where they may.
    let userinfo = anon
        .get(server.url("/v1/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    let mine = anon
        .get(server.url("/v1/me/sessions"))
        .bearer_auth(own["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 200);
    let sessions: Value = mine.json().await.unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 3, "{sessions}");
    let me = anon
        .get(server.url("/v1/me"))
        .bearer_auth(own["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

/// `grant_type=refresh_token` with `fields` added.
async fn refresh_with(
    server: &TestServer,
    refresh_token: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut all = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    all.extend_from_slice(fields);
    server.token_request(&all).await
}

/// The new refresh token of a successful refresh.
async fn rotated(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["refresh_token"].as_str().unwrap().to_owned()
}

/// A refresh token is bound to the client it was issued to (OAuth 2.1
/// §4.3.1): a confidential client's needs that client's secret, no token
/// serves another client, and a password-grant token serves no client.
/// A refused attempt does not spend the token.
#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client() {
    let server = TestServer::start().await;
    let web = client(&server, false, true).await;
    let spa = client(&server, true, true).await;
    let web_secret = web.secret.clone().unwrap();
    let wrong_secret = format!("cs_{}", "A".repeat(43));
    let b = browser(&server, "gina").await;

    // A confidential client's token.
    let tokens = signed_in_tokens(&server, &web, &b).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    for (fields, status, error) in [
        (vec![], 401, "invalid_client"),
        (vec![("client_id", web.id.as_str())], 401, "invalid_client"),
        (
            vec![
                ("client_id", web.id.as_str()),
                ("client_secret", wrong_secret.as_str()),
            ],
            401,
            "invalid_client",
        ),
        (vec![("client_id", spa.id.as_str())], 400, "invalid_grant"),
        (vec![("client_id", "not-a-client")], 401, "invalid_client"),
    ] {
        let body = oauth_error(refresh_with(&server, refresh, &fields).await, status, error).await;
        if error == "invalid_grant" {
            assert_eq!(body["error_description"], OTHER_CLIENT);
        }
    }
    let refresh = rotated(
        refresh_with(
            &server,
            refresh,
            &[
                ("client_id", web.id.as_str()),
                ("client_secret", web_secret.as_str()),
            ],
        )
        .await,
    )
    .await;
    let r = server
        .anon()
        .post(server.url("/v1/token"))
        .basic_auth(&web.id, Some(&web_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    rotated(r).await;

    // A public client's token: by that client, named or not, never by another.
    let tokens = signed_in_tokens(&server, &spa, &b).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let r = refresh_with(
        &server,
        refresh,
        &[
            ("client_id", web.id.as_str()),
            ("client_secret", web_secret.as_str()),
        ],
    )
    .await;
    let body = oauth_error(r, 400, "invalid_grant").await;
    assert_eq!(body["error_description"], OTHER_CLIENT);
    let refresh = rotated(refresh_with(&server, refresh, &[("client_id", &spa.id)]).await).await;
    rotated(refresh_with(&server, &refresh, &[]).await).await;

    // A password-grant token: by no client.
    let password = server.tokens("gina").await;
    let r = refresh_with(&server, &password.refresh, &[("client_id", &spa.id)]).await;
    let body = oauth_error(r, 400, "invalid_grant").await;
    assert_eq!(body["error_description"], OTHER_CLIENT);
    rotated(server.refresh(&password.refresh).await).await;
}

/// What a refresh from a client the token is not for answers.
const OTHER_CLIENT: &str = "the refresh token was issued to another client";

/// A replaced refresh token presented after the grace window is theft, and
/// ends its session, only when its own client presents it: from a
/// stranger (another client, no client for a confidential client's token,
/// a client for a password-grant token) it is refused as a stranger's and
/// the session lives on.
#[tokio::test]
async fn a_strangers_late_refresh_revokes_nothing() {
    let (server, clock) = TestServer::on_manual_clock().await;
    let web = client(&server, false, true).await;
    let spa = client(&server, true, true).await;
    let web_secret = web.secret.clone().unwrap();
    let web_auth = [
        ("client_id", web.id.as_str()),
        ("client_secret", web_secret.as_str()),
    ];
    let b = browser(&server, "hana").await;
    let tokens = signed_in_tokens(&server, &web, &b).await;
    let stale = tokens["refresh_token"].as_str().unwrap().to_owned();
    let current = rotated(refresh_with(&server, &stale, &web_auth).await).await;
    let password = server.tokens("hana").await;
    let password_current = rotated(server.refresh(&password.refresh).await).await;
    clock.advance(time::Duration::seconds(11));

    let body = oauth_error(
        refresh_with(&server, &stale, &[("client_id", &spa.id)]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], OTHER_CLIENT);
    oauth_error(
        refresh_with(&server, &stale, &[]).await,
        401,
        "invalid_client",
    )
    .await;
    let body = oauth_error(
        refresh_with(&server, &password.refresh, &web_auth).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], OTHER_CLIENT);
    // Both sessions live: their current tokens still rotate.
    let current = rotated(refresh_with(&server, &current, &web_auth).await).await;
    rotated(server.refresh(&password_current).await).await;

    // From its own client the same late token is reuse: the session ends.
    let body = oauth_error(
        refresh_with(&server, &stale, &web_auth).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_ne!(body["error_description"], OTHER_CLIENT);
    oauth_error(
        refresh_with(&server, &current, &web_auth).await,
        400,
        "invalid_grant",
    )
    .await;
}
