//! The web pages in a real browser: `tests/e2e/pages.py` drives two
//! headless Chromiums (JavaScript off) through registration, sign-in from
//! two devices, revoking one from the other, a password change, allowing
//! an OAuth client and revoking its access, "sign out everywhere" and the
//! error messages, checking consoles and that every request stays on the
//! server. It writes screenshots of each page at 1280 and 360 px into
//! `$CARGO_TARGET_DIR/screenshots/`.
//!
//! Ignored by default because it needs Chromium, chromedriver (Debian's
//! `chromium` and `chromium-driver`) and Python with selenium;
//! `scripts/test` provides them and runs ignored tests too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/pages.py");
/// The whole run, browsers' start-up included, must fit in this.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium, chromedriver and Python selenium: set BROWSER_TEST_PYTHON (scripts/test does)"]
async fn the_pages_work_in_a_real_browser() {
    let python = std::env::var_os("BROWSER_TEST_PYTHON").unwrap_or_else(|| {
        panic!(
            "BROWSER_TEST_PYTHON is not set: point it at a python with selenium \
             (pip install selenium) and install Debian's chromium and chromium-driver, \
             or run scripts/test, which does both"
        )
    });
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    // A client answered on this server, so the browser never leaves it.
    let r = server
        .anon()
        .post(server.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({
            "name": "Photo Album",
            "redirect_uris": [server.url("/healthz")],
            "public": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let registered: serde_json::Value = r.json().await.unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    let child = tokio::process::Command::new(&python)
        .arg(SCRIPT)
        .arg(&server.base)
        .arg(&shots)
        .arg(client_id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python:?} {SCRIPT}: {e}"));
    let output = tokio::time::timeout(TIME_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the browser test took longer than {TIME_LIMIT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all good"), "{stdout}");
    for page in [
        "login",
        "account",
        "register",
        "logout",
        "consent",
        "account-apps",
    ] {
        for width in [1280, 360] {
            let shot = shots.join(format!("{page}-{width}.png"));
            assert!(shot.is_file(), "no screenshot {}", shot.display());
        }
    }
}
