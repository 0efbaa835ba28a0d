//! Access tokens verify with an independent JWT implementation: PyJWT (with
//! `cryptography`) discovers the key set over HTTP and checks signature,
//! algorithm, issuer, audience and claims for every published algorithm.
//!
//! Ignored by default because it needs Python with PyJWT; `scripts/test`
//! provides one in a virtualenv and runs ignored tests too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::ffi::OsString;
use std::process::Stdio;

use common::{PASSWORD, Server};
use serde_json::{Value, json};

const VERIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/verify_jwt.py");
/// HS256 is not published in the JWKS, so an outside verifier cannot check it.
const ALGORITHMS: [&str; 3] = ["EdDSA", "ES256", "RS256"];

/// Runs the verifier script; returns whether it exited 0, and its output.
async fn verifier(python: &OsString, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(python)
        .arg(VERIFIER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {python:?} {VERIFIER}: {e}"));
    let text = format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim_end(),
        String::from_utf8_lossy(&output.stderr).trim_end(),
    );
    (output.status.success(), text)
}

/// The token with one character in the middle of its signature changed.
fn tamper(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token}");
    let mut signature: Vec<char> = parts[2].chars().collect();
    let middle = signature.len() / 2;
    signature[middle] = if signature[middle] == 'A' { 'B' } else { 'A' };
    let signature: String = signature.into_iter().collect();
    let tampered = format!("{}.{}.{}", parts[0], parts[1], signature);
    assert_ne!(tampered, token);
    tampered
}

#[tokio::test]
#[ignore = "needs PyJWT: set JWT_VERIFIER_PYTHON (scripts/test does)"]
async fn access_tokens_verify_with_pyjwt() {
    let python = std::env::var_os("JWT_VERIFIER_PYTHON").unwrap_or_else(|| {
        panic!(
            "JWT_VERIFIER_PYTHON is not set: point it at a python with PyJWT and \
             cryptography (pip install 'pyjwt[crypto]'), or run scripts/test, which sets it"
        )
    });
    let client = reqwest::Client::new();
    for algorithm in ALGORITHMS {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_public(dir.path(), &[("TESSERA_TOKEN__ALGORITHM", algorithm)]);

        let status = client
            .post(server.url("/v1/users"))
            .json(&json!({ "username": "alice", "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 201, "{algorithm}: register");

        let response = client
            .post(server.url("/v1/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{algorithm}: password grant");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer", "{body}");
        let token = body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{algorithm}: no access_token in {body}"));

        let (ok, output) = verifier(&python, &[&server.base, token, algorithm]).await;
        println!("{algorithm}: {output}");
        assert!(ok, "{algorithm}: PyJWT rejected the token\n{output}");
        assert!(
            output.contains(&format!("stdout: ok {algorithm} ")),
            "{algorithm}: {output}"
        );

        let tampered = tamper(token);
        let (ok, output) = verifier(
            &python,
            &[&server.base, &tampered, algorithm, "--expect-failure"],
        )
        .await;
        println!("{algorithm} (tampered): {output}");
        assert!(ok, "{algorithm}: PyJWT accepted a tampered token\n{output}");
    }
}
