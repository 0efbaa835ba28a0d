//! `tessera-verify` against a real `tessera serve`: valid, forged, expired,
//! wrong-audience and revoked tokens, key rotation, the issuer lost (stale:
//! refused) and back (recovered, with the revocations made meanwhile), and a
//! PostgreSQL + Redis cluster where a revocation on one node reaches a
//! verifier following another.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{PASSWORD, Proxy, Server, database_url_in, free_port, fresh_database, register};
use serde_json::{Value, json};
use tessera_verify::{Verifier, VerifyError};

const SECRET: &str = "verify-introspection-secret-0123456789abcdef";
const ADMIN_TOKEN: &str = "verify-admin-token-0123456789abcdef0123";

/// `tessera serve` on `port`, naming `public_url` as its issuer.
fn issuer(dir: &Path, port: u16, public_url: &str, extra: &[(&str, &str)]) -> Server {
    let listen = format!("127.0.0.1:{port}");
    let mut env = vec![
        ("TESSERA_LISTEN", listen.as_str()),
        ("TESSERA_PUBLIC_URL", public_url),
        ("TESSERA_HOSTS", "127.0.0.1"),
        ("TESSERA_INTROSPECTION_SECRET", SECRET),
        ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    env.extend_from_slice(extra);
    Server::start(dir, &env)
}

/// An access and a refresh token for a new user `name` at `server`.
async fn sign_in(client: &reqwest::Client, server: &Server, name: &str) -> (String, String) {
    let status = register(client, server, name).await;
    assert!(status == 201 || status == 409, "register {name}: {status}");
    grant(client, server, name).await
}

/// A new token session of the existing user `name`: its access and refresh tokens.
async fn grant(client: &reqwest::Client, server: &Server, name: &str) -> (String, String) {
    let r = client
        .post(server.url("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", name),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Ends the token session of `refresh` at `server`.
async fn revoke(client: &reqwest::Client, server: &Server, refresh: &str) {
    let r = client
        .post(server.url("/v1/token/revoke"))
        .form(&[("token", refresh), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn verifier(issuer: &str) -> Verifier {
    Verifier::builder(issuer)
        .introspection_secret(SECRET)
        .max_staleness(Duration::from_secs(1))
        .build()
        .await
        .unwrap()
}

/// Polls `verifier` with `token` until `done` holds for the answer; the
/// time it took. Fails after `limit`.
async fn until(
    verifier: &Verifier,
    token: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&Result<tessera_verify::Claims, VerifyError>) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let answer = verifier.verify(token).await;
        if done(&answer) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: still {answer:?} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The token with its header replaced by `header`.
fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

#[tokio::test]
async fn tokens_are_checked_locally_like_the_server_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let server = issuer(dir.path(), port, &public, &[]);
    let client = reqwest::Client::new();
    let verifier = verifier(&public).await;

    // Valid.
    let (access, refresh) = sign_in(&client, &server, "alice").await;
    let claims = verifier.verify(&access).await.unwrap();
    assert_eq!(claims.iss, public);
    let me: Value = client
        .get(server.url("/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(claims.sub, me["id"].as_str().unwrap());
    assert!(!claims.sid.is_empty());

    // Forged: a changed signature, a changed payload, a key id nobody
    // published, `alg: none`, a header naming its own key.
    let mut forged = access.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(VerifyError::Invalid(_))
    ));
    let mut parts: Vec<&str> = access.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(
        json!({"iss": public, "sub": claims.sub, "aud": public, "iat": claims.iat,
               "exp": claims.exp, "jti": "x", "sid": "y", "roles": ["admin"]})
        .to_string(),
    );
    parts[1] = &payload;
    assert!(matches!(
        verifier.verify(&parts.join(".")).await,
        Err(VerifyError::Invalid(_))
    ));
    let mut header = header_of(&access);
    header["kid"] = json!("not-a-published-kid");
    assert_eq!(
        verifier.verify(&with_header(&access, &header)).await,
        Err(VerifyError::UnknownKey)
    );
    let mut header = header_of(&access);
    header["alg"] = json!("none");
    assert_eq!(
        verifier.verify(&with_header(&access, &header)).await,
        Err(VerifyError::AlgorithmMismatch)
    );
    let mut header = header_of(&access);
    header["jku"] = json!("https://evil.example/jwks.json");
    assert_eq!(
        verifier.verify(&with_header(&access, &header)).await,
        Err(VerifyError::ForbiddenHeader)
    );
    assert_eq!(
        verifier.verify(&"a".repeat(9000)).await,
        Err(VerifyError::TooLarge)
    );

    // Wrong audience: a service expecting another audience refuses it.
    let other = Verifier::builder(&public)
        .audience("https://other.example")
        .introspection_secret(SECRET)
        .build()
        .await
        .unwrap();
    assert!(matches!(
        other.verify(&access).await,
        Err(VerifyError::Invalid(_))
    ));

    // Revoked: refused within a second of the revocation.
    let took = {
        revoke(&client, &server, &refresh).await;
        until(
            &verifier,
            &access,
            Duration::from_secs(1),
            "revocation",
            |a| *a == Err(VerifyError::Revoked),
        )
        .await
    };
    println!("revocation reached the verifier in {took:?}");

    // Key rotation: tokens of the new key verify (the unknown kid makes the
    // verifier fetch the key set again); tokens of the old key still do.
    let (bob_old, _) = sign_in(&client, &server, "bob").await;
    verifier.verify(&bob_old).await.unwrap();
    let r = client
        .post(server.url("/v1/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "rotate: {}", r.status());
    let (carol, _) = sign_in(&client, &server, "carol").await;
    assert_ne!(header_of(&carol)["kid"], header_of(&bob_old)["kid"]);
    // The forged kid above fetched the key set moments ago; refetches are
    // at most one a second, so the new key is seen within about that.
    let took = until(
        &verifier,
        &carol,
        Duration::from_secs(3),
        "new key",
        Result::is_ok,
    )
    .await;
    println!("a token of the new key verified after {took:?}");
    verifier.verify(&bob_old).await.unwrap();
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let server = issuer(
        dir.path(),
        port,
        &public,
        &[("TESSERA_TOKEN__ACCESS_TTL", "30s")],
    );
    let client = reqwest::Client::new();
    let verifier = Verifier::builder(&public)
        .introspection_secret(SECRET)
        .leeway(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let (access, _) = sign_in(&client, &server, "dave").await;
    verifier.verify(&access).await.unwrap();
    // The cached copy expires too: the cache never outlives `exp`.
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(matches!(
        verifier.verify(&access).await,
        Err(VerifyError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_lost_issuer_makes_the_verifier_refuse_and_its_return_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The verifier reaches the issuer through a proxy the test can cut;
    // the test itself talks to the issuer directly.
    let proxy = Proxy::start(([127, 0, 0, 1], port).into()).await;
    let public = format!("http://127.0.0.1:{}", proxy.port);
    let server = issuer(dir.path(), port, &public, &[]);
    let client = reqwest::Client::new();
    let verifier = verifier(&public).await;
    let (alice, alice_refresh) = sign_in(&client, &server, "alice").await;
    let (bob, _) = sign_in(&client, &server, "bob").await;
    verifier.verify(&alice).await.unwrap();
    verifier.verify(&bob).await.unwrap();

    // Feed lost: after max_staleness (1 s) every token is refused.
    proxy.cut();
    let took = until(&verifier, &bob, Duration::from_secs(5), "stale", |a| {
        *a == Err(VerifyError::Stale)
    })
    .await;
    // Staleness counts from the last heartbeat heard (one a second), so it
    // comes between 0 and 1 s after the cut, plus a poll.
    assert!(
        took < Duration::from_millis(1500),
        "stale too late: {took:?}"
    );
    // A revocation made while the verifier cannot hear it…
    revoke(&client, &server, &alice_refresh).await;

    // …is honoured once the feed is back (it resumes from its cursor).
    proxy.restore();
    until(
        &verifier,
        &bob,
        Duration::from_secs(15),
        "recovery",
        Result::is_ok,
    )
    .await;
    assert_eq!(verifier.verify(&alice).await, Err(VerifyError::Revoked));

    // The issuer itself stopped and started again.
    server.kill_9();
    until(
        &verifier,
        &bob,
        Duration::from_secs(5),
        "stale after stop",
        |a| *a == Err(VerifyError::Stale),
    )
    .await;
    let server = issuer(dir.path(), port, &public, &[]);
    until(
        &verifier,
        &bob,
        Duration::from_secs(15),
        "recovery after restart",
        Result::is_ok,
    )
    .await;
    assert_eq!(verifier.verify(&alice).await, Err(VerifyError::Revoked));
    let (carol, _) = sign_in(&client, &server, "carol").await;
    verifier.verify(&carol).await.unwrap();
}

#[tokio::test]
#[ignore = "needs PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL; scripts/test provides them)"]
async fn a_revocation_on_one_node_reaches_a_verifier_following_another() {
    let schema = fresh_database().await;
    let database_url = database_url_in(&schema);
    let redis_url = std::env::var("TEST_REDIS_URL").expect("TEST_REDIS_URL must be set");
    let kek = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let (port_a, port_b) = (free_port(), free_port());
    let public = format!("http://127.0.0.1:{port_a}");
    let shared = [
        ("TESSERA_DATABASE_URL", database_url.as_str()),
        ("TESSERA_REDIS_URL", redis_url.as_str()),
        ("TESSERA_REDIS_PREFIX", schema.as_str()),
        ("TESSERA_KEY_ENCRYPTION_KEY", kek.as_str()),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node_a = issuer(dir_a.path(), port_a, &public, &shared);
    let node_b = issuer(dir_b.path(), port_b, &public, &shared);
    let client = reqwest::Client::new();
    let verifier = verifier(&public).await;

    // 100 token sessions signed in and revoked on node B; the verifier
    // follows node A. Every revocation must be refused within a second.
    assert_eq!(register(&client, &node_b, "erin").await, 201);
    let mut times = Vec::new();
    for _ in 0..100 {
        let (access, refresh) = grant(&client, &node_b, "erin").await;
        verifier.verify(&access).await.unwrap();
        revoke(&client, &node_b, &refresh).await;
        times.push(
            until(
                &verifier,
                &access,
                Duration::from_secs(1),
                "cluster revocation",
                |a| *a == Err(VerifyError::Revoked),
            )
            .await,
        );
    }
    times.sort();
    println!(
        "revocation on another node to the verifier: p50 {:?}, p99 {:?}, max {:?} (100 revocations)",
        times[49], times[98], times[99]
    );
    drop(node_a);
}

/// The `resource_server` example of tessera-verify, as `cargo build
/// --example` leaves it in `target/<profile>/examples/` (scripts/test builds
/// it first; `cargo test --all-targets` builds examples only as test
/// harnesses, under hashed names, which are not the example).
fn resource_server_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/verify-… → target/<profile>/examples/resource_server
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join("resource_server");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p tessera-verify --example resource_server` \
         (scripts/test does)",
        path.display()
    );
    path
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
#[ignore = "needs the resource_server example built (scripts/test builds it first)"]
async fn the_resource_server_example_refuses_revoked_tokens_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let server = issuer(dir.path(), port, &public, &[]);
    let app_port = free_port();
    let app = format!("http://127.0.0.1:{app_port}");
    let _example = Child(
        std::process::Command::new(resource_server_binary())
            .env("TESSERA_URL", &public)
            .env("TESSERA_AUDIENCE", &public)
            .env("TESSERA_INTROSPECTION_SECRET", SECRET)
            .env("LISTEN", format!("127.0.0.1:{app_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client.get(format!("{app}/healthz")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the example did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hello = |token: Option<String>| {
        let mut request = client.get(format!("{app}/hello"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };

    let r = hello(None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(hello(Some("not.a.token".into())).await.status(), 401);

    // 100 sessions: each one's token works, then is refused once revoked.
    assert_eq!(register(&client, &server, "frank").await, 201);
    let mut times = Vec::new();
    for _ in 0..100 {
        let (access, refresh) = grant(&client, &server, "frank").await;
        let r = hello(Some(access.clone())).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert!(body["sub"].is_string() && body["sid"].is_string(), "{body}");
        revoke(&client, &server, &refresh).await;
        let revoked = Instant::now();
        loop {
            let status = hello(Some(access.clone())).await.status();
            if status == 401 {
                break;
            }
            assert_eq!(status, 200);
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "still accepted after 1 s"
            );
        }
        times.push(revoked.elapsed());
    }
    times.sort();
    println!(
        "revocation to the resource_server example: p50 {:?}, p99 {:?}, max {:?} (100 revocations)",
        times[49], times[98], times[99]
    );

    // Issuer gone: the example answers 503 once the feed is stale (5 s).
    let (access, _) = grant(&client, &server, "frank").await;
    assert_eq!(hello(Some(access.clone())).await.status(), 200);
    server.kill_9();
    let lost = Instant::now();
    loop {
        let r = hello(Some(access.clone())).await;
        if r.status() == 503 {
            assert!(r.headers().contains_key("retry-after"));
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(lost.elapsed() < Duration::from_secs(10), "never went stale");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        client
            .get(format!("{app}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
