//! The web pages in a real browser. `tests/e2e/pages.py` drives two
//! headless Chromiums (JavaScript off) through registration, sign-in from
//! two devices, revoking one from the other, a password change, allowing
//! an OAuth client and revoking its access, "sign out everywhere" and the
//! error messages, checking consoles and that every request stays on the
//! server. `tests/e2e/authorize.py` takes one through
//! the OAuth authorization-code flow from an application on another origin
//! (`relying_party`): sign-in page, consent page, back to the application,
//! which exchanges the code. `tests/e2e/passkeys.py` runs one Chromium with
//! JavaScript on and a WebDriver virtual authenticator: a passkey added on
//! `/account`, signing in with it alone, renaming and removing it. Each
//! writes screenshots at 1280 and 360 px into
//! `$CARGO_TARGET_DIR/screenshots/`.
//!
//! Ignored by default because they need Chromium, chromedriver (Debian's
//! `chromium` and `chromium-driver`) and Python with selenium;
//! `scripts/test` provides them and runs ignored tests too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod relying_party;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use relying_party::{Outcome, RelyingParty};
use serde_json::{Value, json};

const PAGES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/pages.py");
const AUTHORIZE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/authorize.py");
const PASSKEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/passkeys.py");
/// A whole script's run, browsers' start-up included, must fit in this.
const TIME_LIMIT: Duration = Duration::from_secs(110);

/// Where screenshots go: `$CARGO_TARGET_DIR/screenshots`, else next to the
/// `target` directory this test binary was built in.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/debug/deps/browser-<hash>
            let exe = std::env::current_exe().unwrap();
            exe.ancestors().nth(3).unwrap().to_path_buf()
        });
    target.join("screenshots")
}

/// Runs `script` with the server's base URL, the screenshot directory and
/// `extra` arguments; fails unless it succeeds and says "all good".
async fn run_script(script: &str, server: &TestServer, extra: &[&str]) -> PathBuf {
    let python = std::env::var_os("BROWSER_TEST_PYTHON").unwrap_or_else(|| {
        panic!(
            "BROWSER_TEST_PYTHON is not set: point it at a python with selenium \
             (pip install selenium) and install Debian's chromium and chromium-driver, \
             or run scripts/test, which does both"
        )
    });
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let child = tokio::process::Command::new(&python)
        .arg(script)
        .arg(&server.base)
        .arg(&shots)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python:?} {script}: {e}"));
    let output = tokio::time::timeout(TIME_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} took longer than {TIME_LIMIT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all good"), "{stdout}");
    shots
}

fn assert_screenshots(shots: &std::path::Path, pages: &[&str]) {
    for page in pages {
        for width in [1280, 360] {
            let shot = shots.join(format!("{page}-{width}.png"));
            assert!(shot.is_file(), "no screenshot {}", shot.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium, chromedriver and Python selenium: set BROWSER_TEST_PYTHON (scripts/test does)"]
async fn the_pages_work_in_a_real_browser() {
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    // A client answered on this server, so the browser never leaves it.
    let r = server
        .anon()
        .post(server.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": "Photo Album",
            "redirect_uris": [server.url("/healthz")],
            "public": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let registered: Value = r.json().await.unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    let shots = run_script(PAGES, &server, &[client_id]).await;
    assert_screenshots(
        &shots,
        &[
            "login",
            "account",
            "register",
            "logout",
            "consent",
            "account-apps",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium, chromedriver and Python selenium: set BROWSER_TEST_PYTHON (scripts/test does)"]
async fn the_authorization_code_flow_works_in_a_real_browser() {
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    server.register("alice").await;
    // The application: another port, so another origin than the server's.
    let (listener, redirect_uri) = relying_party::bind().await;
    let r = server
        .anon()
        .post(server.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "Photos", "redirect_uris": [redirect_uri], "public": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let client: Value = r.json().await.unwrap();
    let client_id = client["client_id"].as_str().unwrap();
    let rp = RelyingParty::serve(listener, &redirect_uri, &server.base, client_id);

    let flows = json!({
        "callback": rp.redirect_uri(),
        "username": "alice",
        "first": rp.authorization_url("first", &[]),
        "again": rp.authorization_url("again", &[]),
        "deny": rp.authorization_url("deny", &[("prompt", "consent")]),
    });
    let shots = run_script(AUTHORIZE, &server, &[&flows.to_string()]).await;
    assert_screenshots(
        &shots,
        &[
            "authorize-login",
            "authorize-consent",
            "authorize-consent-dark",
        ],
    );

    // What the application received: two codes it exchanged, then a refusal.
    let outcomes = rp.outcomes();
    assert_eq!(outcomes.len(), 3, "{outcomes:#?}");
    let mut sessions = Vec::new();
    for (outcome, expected) in outcomes.iter().zip(["first", "again"]) {
        let Outcome::SignedIn {
            flow,
            id_token,
            userinfo,
            session_id,
        } = outcome
        else {
            panic!("{expected}: {outcome:?}");
        };
        assert_eq!(flow, expected);
        assert_eq!(id_token["iss"], server.base.as_str());
        assert_eq!(id_token["sid"], session_id.as_str());
        assert_eq!(id_token["preferred_username"], "alice");
        assert_eq!(userinfo["sub"], id_token["sub"]);
        sessions.push(session_id.clone());
    }
    assert_ne!(sessions[0], sessions[1]);
    let Outcome::Refused { flow, error, iss } = &outcomes[2] else {
        panic!("deny: {:?}", outcomes[2]);
    };
    assert_eq!(flow, "deny");
    assert_eq!(error, "access_denied");
    assert_eq!(iss.as_deref(), Some(server.base.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium, chromedriver and Python selenium: set BROWSER_TEST_PYTHON (scripts/test does)"]
async fn passkeys_work_in_a_real_browser() {
    // http://localhost: WebAuthn needs a host name for its relying party,
    // and localhost is a secure context without TLS.
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        localhost: true,
        ..Options::default()
    })
    .await;
    let shots = run_script(PASSKEYS, &server, &[]).await;
    assert_screenshots(
        &shots,
        &[
            "account-passkeys",
            "login-passkey",
            "login-second-step-passkey",
        ],
    );
    // What the browser did, seen from the server: the passkey was added,
    // signed in, and removed.
    let audit: Value = server
        .admin(reqwest::Method::GET, "/v1/admin/audit")
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
