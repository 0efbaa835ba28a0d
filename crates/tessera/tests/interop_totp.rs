//! Two-step verification works with an independent TOTP implementation:
//! `scripts/totp_client.py` plays the authenticator app with Python's
//! pyotp against a real `tessera serve` — it reads the `otpauth://` URI the
//! server hands out, confirms the enrolment and signs in on both carriers
//! (`POST /v1/session/mfa`, the MFA grant) with pyotp's codes and with
//! recovery codes, and checks the refusals a client meets (a replayed
//! code, a code of a step too far away, a used recovery code, a spent
//! token).
//!
//! Ignored by default because it needs Python with pyotp and requests;
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
use serde_json::json;

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/totp_client.py");
const TIME_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
#[ignore = "needs Python with pyotp and requests: set TOTP_CLIENT_PYTHON (scripts/test does)"]
async fn pyotp_enrols_and_signs_in_with_its_codes() {
    let python = std::env::var_os("TOTP_CLIENT_PYTHON").unwrap_or_else(|| {
        panic!(
            "TOTP_CLIENT_PYTHON is not set: point it at a python with pyotp and requests \
             (pip install pyotp requests), or run scripts/test, which sets it"
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_public(
        dir.path(),
        // Plain HTTP on loopback: the cookie cannot be Secure.
        &[("TESSERA_COOKIE__SECURE", "false")],
    );
    let http = reqwest::Client::new();
    assert_eq!(register(&http, &server, "alice").await, 201);
    let config = json!({
        "issuer": server.base,
        "username": "alice",
        "password": PASSWORD,
    });
    let child = tokio::process::Command::new(&python)
        .arg(CLIENT)
        .arg(config.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python:?} {CLIENT}: {e}"));
    let output = tokio::time::timeout(TIME_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{CLIENT} took longer than {TIME_LIMIT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the pyotp client failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for step in [
        "pyotp's code confirms the enrolment",
        "the confirming code is refused when replayed",
        "pyotp's code signs in",
        "a recovery code finishes the grant",
        "a used recovery code is refused",
        "all good",
    ] {
        assert!(stdout.contains(step), "missing {step:?}:\n{stdout}");
    }
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
}
