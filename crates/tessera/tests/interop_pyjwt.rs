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

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/verify_jwt.py");
/// HS256 is not published in the JWKS, so an outside verifier cannot check it.
const ALGORITHMS: [&str; 3] = ["EdDSA", "ES256", "RS256"];

struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `tessera serve` in `dir` on a free port whose URL is also the
    /// public URL, so the issuer is an address the verifier can fetch from.
    /// A free port can be taken by someone else before the server binds it;
    /// then the server exits and another port is tried.
    fn start(dir: &Path, algorithm: &str) -> Self {
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            match Self::try_start(dir, algorithm, port) {
                Ok(server) => return server,
                Err(log) => failures.push(log),
            }
        }
        panic!("server did not start; logs: {failures:#?}");
    }

    fn try_start(dir: &Path, algorithm: &str, port: u16) -> Result<Self, Vec<String>> {
        let base = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command.current_dir(dir);
        // The server must see only the configuration set here.
        for (name, _) in std::env::vars() {
            if name.starts_with("TESSERA_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
            .env("TESSERA_PUBLIC_URL", &base)
            .env("TESSERA_TOKEN__ALGORITHM", algorithm)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let mut server = Self { child, base };
        loop {
            let line = match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => line,
                // stderr closed: the server exited (e.g. the port was taken).
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(seen),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("server did not start in 30 s; log: {seen:#?}")
                }
            };
            let address = line
                .split("listening on ")
                .nth(1)
                .map(|rest| rest.split_whitespace().next().unwrap().to_owned());
            seen.push(line);
            if let Some(address) = address {
                assert_eq!(address, server.base, "log: {seen:#?}");
                // Keep draining the log so the server never blocks on stderr.
                std::thread::spawn(move || for _ in rx {});
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                seen.push(format!("exited: {status}"));
                return Err(seen);
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
        let server = Server::start(dir.path(), algorithm);

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
