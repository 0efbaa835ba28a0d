//! The OAuth 2.1 / OpenID Connect provider works with an independent,
//! maintained relying-party library: `scripts/oidc_rp.py` uses Python's
//! authlib against a real `tessera serve` — discovery, the authorization
//! URL with PKCE S256, the sign-in and consent pages (driven with
//! `requests`), the code exchange for a public client and for confidential
//! clients (Basic and form authentication), ID-token validation against the
//! published keys for every ID-token algorithm the discovery document
//! lists, UserInfo, refresh, RP-initiated logout, and the hostile cases seen
//! from the client's side. Each configurable signing algorithm is run.
//!
//! Ignored by default because it needs Python with authlib and requests;
//! `scripts/test` provides them in a virtualenv and runs ignored tests too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{PASSWORD, Server, register};
use serde_json::{Value, json};

const RP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/oidc_rp.py");
const ADMIN_TOKEN: &str = "interop-oidc-admin-token-0123456789abcdef";
/// The server's configured algorithm; ID tokens come in it or in RS256.
const ALGORITHMS: [&str; 3] = ["EdDSA", "ES256", "RS256"];
/// The relying party's addresses: never fetched (it catches the redirects
/// itself), but registered exactly.
const REDIRECT_URI: &str = "https://rp.example/callback";
const OTHER_REDIRECT_URI: &str = "https://rp.example/other-callback";
const POST_LOGOUT_URI: &str = "https://rp.example/signed-out";
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// Registers a client through the admin API: its id and secret.
async fn add_client(
    http: &reqwest::Client,
    server: &Server,
    name: &str,
    public: bool,
    alg: &str,
) -> Value {
    let r = http
        .post(server.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": name,
            "redirect_uris": [REDIRECT_URI, OTHER_REDIRECT_URI],
            "post_logout_redirect_uris": [POST_LOGOUT_URI],
            "public": public,
            "id_token_signed_response_alg": alg,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "registering {name}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["client_secret"].is_string(), !public, "{body}");
    json!({
        "client_id": body["client_id"],
        "client_secret": body["client_secret"],
        "redirect_uri": REDIRECT_URI,
        "other_redirect_uri": OTHER_REDIRECT_URI,
        "post_logout_redirect_uri": POST_LOGOUT_URI,
    })
}

#[tokio::test]
#[ignore = "needs Python with authlib and requests: set OIDC_RP_PYTHON (scripts/test does)"]
async fn authlib_signs_in_through_the_authorization_code_flow() {
    let python = std::env::var_os("OIDC_RP_PYTHON").unwrap_or_else(|| {
        panic!(
            "OIDC_RP_PYTHON is not set: point it at a python with authlib and requests \
             (pip install authlib requests), or run scripts/test, which sets it"
        )
    });
    let http = reqwest::Client::new();
    for algorithm in ALGORITHMS {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_public(
            dir.path(),
            &[
                ("TESSERA_TOKEN__ALGORITHM", algorithm),
                ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN),
                // Plain HTTP on loopback: the cookie cannot be Secure.
                ("TESSERA_COOKIE__SECURE", "false"),
            ],
        );
        assert_eq!(register(&http, &server, "alice").await, 201);

        // A public and a confidential client for every ID-token algorithm
        // the server offers; the script checks the list is the discovery
        // document's.
        let discovery: Value = http
            .get(server.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id_token_algs = discovery["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap_or_else(|| panic!("{algorithm}: no ID-token algorithms in {discovery}"));
        let mut clients = Vec::new();
        for alg in id_token_algs {
            let alg = alg.as_str().unwrap();
            clients.push(json!({
                "alg": alg,
                "public": add_client(&http, &server, &format!("SPA {alg}"), true, alg).await,
                "confidential": add_client(&http, &server, &format!("Web {alg}"), false, alg).await,
            }));
        }
        let config = json!({
            "issuer": server.base,
            "username": "alice",
            "password": PASSWORD,
            "clients": clients,
        });

        let child = tokio::process::Command::new(&python)
            .arg(RP)
            .arg(config.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python:?} {RP}: {e}"));
        let output = tokio::time::timeout(TIME_LIMIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{algorithm}: {RP} took longer than {TIME_LIMIT:?}"))
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("{algorithm}:\n{stdout}\n{stderr}");
        assert!(
            output.status.success(),
            "{algorithm}: the authlib relying party failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        for alg in id_token_algs {
            let alg = alg.as_str().unwrap();
            assert!(
                stdout.contains(&format!("ID token {alg} verified")),
                "{algorithm}: {alg} not checked:\n{stdout}"
            );
        }
        assert!(stdout.contains("all good"), "{algorithm}: {stdout}");
    }
}
