//! The `tessera` binary as a user runs it: fresh start, restart, kill -9,
//! graceful shutdown, configuration errors, the user commands.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{PASSWORD, Server, access_token, me_status, register, run_with_stdin, tessera};

use serde_json::{Value, json};

async fn sign_in(client: &reqwest::Client, server: &Server, name: &str) -> reqwest::Response {
    client
        .post(server.url("/v1/session"))
        .json(&json!({ "username": name, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn starts_with_no_configuration_and_keeps_data_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let data = dir.path().join("tessera-data");
    assert!(data.join("tessera.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the data directory is private");
        let mode = std::fs::metadata(data.join("tessera.db"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode, 0o600,
            "the database (hashes, private keys) is the owner's only"
        );
    }
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    let (status, log) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(log.iter().any(|l| l.contains("stopped")), "{log:#?}");

    let server = Server::start(dir.path(), &[]);
    assert_eq!(register(&client, &server, "alice").await, 409);
    assert_eq!(sign_in(&client, &server, "alice").await.status(), 200);
}

#[tokio::test]
async fn logs_where_it_listens_and_where_its_data_is() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TESSERA_COOKIE__SECURE", "false")]);
    let (_, log) = server.terminate();
    let all = log.join("\n");
    assert!(all.contains("tessera-data/tessera.db"), "{all}");
    assert!(all.contains("cookie.secure is false"), "{all}");
}

#[tokio::test]
async fn kill_9_keeps_every_acknowledged_registration() {
    let dir = tempfile::tempdir().unwrap();
    // Forty registrations from loopback: past the default per-address limit.
    let env = [("TESSERA_RATE_LIMIT__REGISTRATIONS", "100")];
    let server = Server::start(dir.path(), &env);
    let client = reqwest::Client::new();
    for i in 0..20 {
        assert_eq!(register(&client, &server, &format!("user{i}")).await, 201);
    }
    server.kill_9();
    let server = Server::start(dir.path(), &env);
    for i in 0..20 {
        assert_eq!(
            register(&client, &server, &format!("user{i}")).await,
            409,
            "user{i} lost"
        );
    }
    assert_eq!(sign_in(&client, &server, "user19").await.status(), 200);
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    // Slow hashing on one worker keeps requests in flight long enough to
    // signal in the middle of them.
    let server = Server::start(
        dir.path(),
        &[
            ("TESSERA_PASSWORD__ITERATIONS", "16"),
            ("TESSERA_PASSWORD__WORKERS", "1"),
        ],
    );
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..6)
        .map(|i| {
            let client = client.clone();
            let url = server.url("/v1/users");
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({ "username": format!("inflight{i}"), "password": PASSWORD }))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let finished_before_signal = requests.iter().filter(|r| r.is_finished()).count();
    assert!(
        finished_before_signal < 6,
        "all requests finished before the signal: nothing was tested"
    );
    let (status, _) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), 201);
    }
}

#[tokio::test]
async fn short_idle_timeout_expires_idle_sessions_in_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TESSERA_SESSION__IDLE_TIMEOUT", "3s"),
            ("TESSERA_COOKIE__SECURE", "false"),
        ],
    );
    let anon = reqwest::Client::new();
    assert_eq!(register(&anon, &server, "alice").await, 201);
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert_eq!(sign_in(&browser, &server, "alice").await.status(), 200);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let r = browser.get(server.url("/v1/me")).send().await.unwrap();
        assert_eq!(r.status(), 200, "an active session stays alive");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = browser.get(server.url("/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401, "an idle session expires");
}

#[test]
fn configuration_errors_stop_the_start_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(dir.path())
        .arg("serve")
        .env("TESSERA_SESSION__IDLE_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("session.idle_timeout"), "{stderr}");
    assert!(stderr.contains("TESSERA_SESSION__IDLE_TIMEOUT"), "{stderr}");

    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, "[cookie]\nsecure = false\nflavour = \"oat\"\n").unwrap();
    let out = tessera(dir.path())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cookie.flavour"), "{stderr}");

    let out = tessera(dir.path())
        .args(["serve", "--config", "missing.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !dir.path().join("tessera-data").exists(),
        "nothing was started"
    );
}

#[test]
fn migrate_creates_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(dir.path()).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("tessera-data/tessera.db").exists());
}

#[tokio::test]
async fn user_commands_manage_accounts_the_server_sees() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run_with_stdin(
        dir.path(),
        &["user", "add", "Root", "--admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = run_with_stdin(
        dir.path(),
        &["user", "add", "root"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!ok && err.contains("taken"), "{err}");
    let (ok, _, err) = run_with_stdin(dir.path(), &["user", "add", "weak"], "short\n");
    assert!(!ok && err.contains("at least 8"), "{err}");
    let (ok, out, _) = run_with_stdin(dir.path(), &["user", "list"], "");
    assert!(ok);
    assert!(out.contains("Root\tactive\tadmin"), "{out}");

    let server = Server::start(dir.path(), &[("TESSERA_COOKIE__SECURE", "false")]);
    let admin = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert_eq!(sign_in(&admin, &server, "root").await.status(), 200);
    let r = admin
        .get(server.url("/v1/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["users"][0]["username"], "Root");
    assert_eq!(page["users"][0]["disabled"], false);
    drop(server);

    let (ok, out, err) = run_with_stdin(dir.path(), &["user", "disable", "ROOT"], "");
    assert!(ok && out.contains("disabled"), "{err}");
    let (ok, _, err) = run_with_stdin(dir.path(), &["user", "disable", "nobody"], "");
    assert!(!ok && err.contains("no user"), "{err}");
    let server = Server::start(dir.path(), &[("TESSERA_COOKIE__SECURE", "false")]);
    assert_eq!(sign_in(&admin, &server, "root").await.status(), 401);
    let r = admin
        .get(server.url("/v1/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "disabling revoked the session");
}

async fn jwks_kids(client: &reqwest::Client, server: &Server) -> Vec<String> {
    let jwks: Value = client
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
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn keys_rotated_from_the_command_line_reach_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    let old_token = access_token(&client, &server, "alice").await;
    let old_kids = jwks_kids(&client, &server).await;
    assert_eq!(old_kids.len(), 1);

    let (ok, out, err) = run_with_stdin(dir.path(), &["keys", "rotate"], "");
    assert!(ok, "{err}");
    let new_kid = out.split('\t').next().unwrap().to_owned();
    assert_ne!(new_kid, old_kids[0]);
    let (ok, out, _) = run_with_stdin(dir.path(), &["keys", "list"], "");
    assert!(ok);
    assert!(
        out.lines()
            .next()
            .unwrap()
            .starts_with(&format!("{new_kid}\tEdDSA\tcurrent")),
        "{out}"
    );
    assert!(out.contains("retired, verifies until"), "{out}");

    // The server rereads its keys on its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let kids = jwks_kids(&client, &server).await;
        if kids.first() == Some(&new_kid) {
            assert_eq!(kids.len(), 2, "the old key is still published");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotation not picked up: {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(me_status(&client, &server, &old_token).await, 200);
    let new_token = access_token(&client, &server, "alice").await;
    assert!(new_token.split('.').next().is_some());
    assert_eq!(me_status(&client, &server, &new_token).await, 200);
}

#[tokio::test]
async fn disabling_from_the_command_line_revokes_access_tokens_on_the_running_server() {
    const SECRET: &str = "introspection-secret-for-this-test-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TESSERA_INTROSPECTION_SECRET", SECRET)]);
    let client = reqwest::Client::new();
    assert_eq!(register(&client, &server, "alice").await, 201);
    let token = access_token(&client, &server, "alice").await;
    // Introspection consults only the in-memory revocation set, so it shows
    // whether the revocation made by another process reached this one.
    let active = || async {
        let r = client
            .post(server.url("/v1/token/introspect"))
            .bearer_auth(SECRET)
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["active"] == true
    };
    assert!(active().await);
    assert_eq!(me_status(&client, &server, &token).await, 200);
    let (ok, _, err) = run_with_stdin(dir.path(), &["user", "disable", "alice"], "");
    assert!(ok, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while active().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the revocation never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(me_status(&client, &server, &token).await, 401);
}

#[tokio::test]
async fn serves_https_with_hsts_from_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_pem = generated.cert.pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TESSERA_TLS__CERT", cert_path.to_str().unwrap()),
            ("TESSERA_TLS__KEY", key_path.to_str().unwrap()),
        ],
    );
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .cookie_store(true)
        .build()
        .unwrap();
    assert_eq!(register(&client, &server, "alice").await, 201);
    let r = sign_in(&client, &server, "alice").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-tessera=") && cookie.contains("Secure"),
        "{cookie}"
    );
    let me = client.get(server.url("/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 200, "the Secure cookie travels over HTTPS");
    let discovery: Value = client
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], server.base.as_str());
    // A client that does not trust the certificate gets nowhere.
    let untrusting = reqwest::Client::new();
    assert!(untrusting.get(server.url("/healthz")).send().await.is_err());
    // Plain HTTP on the TLS port is not served.
    let plain = server.base.replace("https://", "http://");
    let r = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .send()
        .await;
    assert!(r.map(|r| r.status() != 200).unwrap_or(true));
}

#[test]
fn oversized_headers_get_431_and_slow_headers_are_cut_off() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let ask = |extra: &str| {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        // One write, and its error ignored: the server may answer 431 and close
        // before the oversized request is fully sent (a broken pipe here), and
        // the answer is still there to read.
        let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        let _ = stream.write_all(request.as_bytes());
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut chunk) {
            answer.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(ask("Connection: close\r\n").starts_with("HTTP/1.1 200"));
    let big = format!("X-Padding: {}\r\n", "a".repeat(17 * 1024));
    assert!(ask(&big).starts_with("HTTP/1.1 431"), "headers over 16 KiB");
    // A client that never finishes its headers is disconnected.
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = stream.read(&mut buf).unwrap_or(0);
    assert_eq!(read, 0, "the connection is closed, nothing is served");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "cut off after the header timeout"
    );
}
