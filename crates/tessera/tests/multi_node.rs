//! Three `tessera serve` nodes on loopback sharing one PostgreSQL database
//! and one Redis, with no sticky sessions: sign in on one node, use the
//! cookie and the token on the others, revoke on a third and measure how
//! long until the others refuse it; then take Redis and PostgreSQL away and
//! back, showing fail-closed behaviour and recovery.
//!
//! Needs `TEST_DATABASE_URL` (scripts/test sets it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::{Proxy, Server, database_url_in, free_port, fresh_database};
use serde_json::{Value, json};
use tessera_core::key_wrap::KeyEncryptionKey;

const PASSWORD: &str = "correct horse battery staple";
const SECRET: &str = "multi-node-introspection-secret-0123456789";
const PUBLIC_URL: &str = "http://auth.tessera.test";

/// A Redis server of the test's own, so it can be stopped and started.
struct OwnRedis {
    child: Option<Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child: Some(child) }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn status(client: &reqwest::Client, request: reqwest::RequestBuilder) -> u16 {
    let _ = client;
    request
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn introspect_active(client: &reqwest::Client, node: &Server, token: &str) -> Option<bool> {
    let r = client
        .post(node.url("/v1/token/introspect"))
        .bearer_auth(SECRET)
        .form(&[("token", token)])
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    Some(r.json::<Value>().await.ok()?["active"] == true)
}

/// Polls `check` until it holds, returning the time it took; fails after `limit`.
/// Cookie sign-in on `node`: the cookie (`name=value`) and the CSRF token.
async fn cookie_sign_in(
    client: &reqwest::Client,
    node: &Server,
    username: &str,
) -> (String, String) {
    let r = client
        .post(node.url("/v1/session"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

/// Password grant on `node`: the token response.
async fn password_grant(client: &reqwest::Client, node: &Server, username: &str) -> Value {
    let r = client
        .post(node.url("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A wrong password for bob on `node`, from `ip` (forwarded by the test).
async fn wrong_password_from(
    client: &reqwest::Client,
    node: &Server,
    ip: &str,
) -> reqwest::Response {
    client
        .post(node.url("/v1/session"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "username": "bob", "password": "wrong password" }))
        .send()
        .await
        .unwrap()
}

async fn time_until<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL and redis-server: scripts/test sets TEST_DATABASE_URL and runs it"]
async fn three_nodes_share_sessions_and_revocations() {
    let database_url = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL must be set (scripts/test sets it)");
    let schema = fresh_database().await;
    let pg_address = {
        let options = sqlx::postgres::PgConnectOptions::from_str(&database_url).unwrap();
        let host = options.get_host().to_owned();
        let host = if host.starts_with('/') {
            "127.0.0.1".to_owned()
        } else {
            host
        };
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), options.get_port()))
            .unwrap()
            .next()
            .unwrap()
    };
    // Nodes reach PostgreSQL through a proxy the test can cut.
    let pg_proxy = Proxy::start(pg_address).await;
    let node_db_url = {
        let (scheme_user, rest) = database_url.split_once('@').unwrap();
        let path = rest.split_once('/').map(|(_, p)| p).unwrap_or("postgres");
        let db = path.split('?').next().unwrap();
        format!(
            "{scheme_user}@127.0.0.1:{}/{db}?options=-c%20search_path%3D{schema}",
            pg_proxy.port
        )
    };
    let redis_port = free_port();
    let mut redis = OwnRedis::start(redis_port);
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let prefix = format!("mn{}:", &schema[3..11]);
    // Every node is given the same key-encryption key, as it must be.
    let kek = KeyEncryptionKey::generate().unwrap().to_base64();
    let env: Vec<(&str, &str)> = vec![
        ("TESSERA_DATABASE_URL", node_db_url.as_str()),
        ("TESSERA_KEY_ENCRYPTION_KEY", kek.as_str()),
        ("TESSERA_REDIS_URL", redis_url.as_str()),
        ("TESSERA_REDIS_PREFIX", prefix.as_str()),
        ("TESSERA_PUBLIC_URL", PUBLIC_URL),
        // The test talks to each node by address, not through a balancer.
        ("TESSERA_HOSTS", "127.0.0.1"),
        ("TESSERA_COOKIE__SECURE", "false"),
        ("TESSERA_INTROSPECTION_SECRET", SECRET),
        // A low limit for the brute-force drill; the drill's addresses are
        // forwarded by the test, everything else comes from 127.0.0.1.
        ("TESSERA_RATE_LIMIT__LOGIN_ATTEMPTS", "3"),
        ("TESSERA_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<Server> = dirs.iter().map(|d| Server::start(d.path(), &env)).collect();
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let anon = reqwest::Client::new();

    // Every node publishes the same keys.
    let mut jwks = Vec::new();
    for node in &nodes {
        let keys: Value = anon
            .get(node.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks.push(keys);
    }
    assert!(
        jwks.windows(2).all(|w| w[0] == w[1]),
        "JWKS differs between nodes: {jwks:?}"
    );

    // Sign up and sign in on A.
    let r = anon
        .post(a.url("/v1/users"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = anon
        .post(a.url("/v1/users"))
        .json(&json!({ "username": "bob", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (cookie, csrf) = cookie_sign_in(&anon, a, "alice").await;
    let tokens = password_grant(&anon, a, "alice").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // The cookie and the token work on every node: no sticky sessions.
    for node in &nodes {
        assert_eq!(
            status(
                &anon,
                anon.get(node.url("/v1/me")).header("cookie", &cookie)
            )
            .await,
            200
        );
        assert_eq!(
            status(&anon, anon.get(node.url("/v1/me")).bearer_auth(&access)).await,
            200
        );
    }
    // A refresh on B; the new pair works on C.
    let r = anon
        .post(b.url("/v1/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        status(&anon, anon.get(c.url("/v1/me")).bearer_auth(&access)).await,
        200
    );
    for node in [a, b] {
        assert_eq!(introspect_active(&anon, node, &access).await, Some(true));
    }

    // Revoke everything on C; measure until A and B refuse.
    let revoked_at = Instant::now();
    let r = anon
        .delete(c.url("/v1/me/sessions?scope=all"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let mut report = Vec::new();
    for (name, node) in [("A", a), ("B", b)] {
        let set = time_until(Duration::from_secs(1), "revocation set", || async {
            introspect_active(&anon, node, &access).await == Some(false)
        })
        .await;
        let bearer = time_until(Duration::from_secs(1), "bearer refused", || async {
            status(&anon, anon.get(node.url("/v1/me")).bearer_auth(&access)).await == 401
        })
        .await;
        let cookie_refused = time_until(Duration::from_secs(1), "cookie refused", || async {
            status(
                &anon,
                anon.get(node.url("/v1/me")).header("cookie", &cookie),
            )
            .await
                == 401
        })
        .await;
        let since_revocation = revoked_at.elapsed();
        report.push(format!(
            "node {name}: revocation set {set:?}, bearer refused {bearer:?}, cookie refused {cookie_refused:?} (all within {since_revocation:?} of the revocation)"
        ));
        assert!(since_revocation < Duration::from_secs(1), "{report:?}");
    }
    println!("revocation propagation: {}", report.join("; "));

    // A fresh token session for the failure drills.
    let tokens = password_grant(&anon, a, "alice").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let session_id = tokens["session_id"].as_str().unwrap().to_owned();

    // Redis goes away: nodes stay ready (Redis only accelerates) and say
    // what they lack, keep checking revocations through PostgreSQL, and
    // never accept a revoked token.
    redis.stop();
    for node in &nodes {
        time_until(
            Duration::from_secs(5),
            "ready but degraded without Redis",
            || async {
                let r = anon.get(node.url("/readyz")).send().await.unwrap();
                r.status() == 200
                    && r.json::<Value>().await.unwrap()["degraded"] == json!(["redis"])
            },
        )
        .await;
    }
    assert_eq!(
        status(&anon, anon.get(b.url("/v1/me")).bearer_auth(&access)).await,
        200
    );
    let r = anon
        .post(c.url("/v1/token/revoke"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let without_redis = time_until(
        Duration::from_secs(1),
        "revocation without Redis",
        || async { introspect_active(&anon, a, &access).await == Some(false) },
    )
    .await;
    assert_eq!(
        status(&anon, anon.get(a.url("/v1/me")).bearer_auth(&access)).await,
        401
    );
    println!(
        "revocation without Redis reached node A in {without_redis:?} (store polling); session {session_id}"
    );
    // Sign-in goes on with the counters in PostgreSQL, still shared by the
    // nodes and still limited.
    cookie_sign_in(&anon, b, "alice").await;
    password_grant(&anon, c, "alice").await;
    for node in [a, b, c] {
        let r = wrong_password_from(&anon, node, "203.0.113.50").await;
        assert_eq!(r.status(), 401, "a wrong password without Redis");
    }
    let r = wrong_password_from(&anon, a, "203.0.113.50").await;
    assert_eq!(r.status(), 429, "the limit holds without Redis");
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );

    // Redis comes back: nodes recover by themselves.
    let _redis = OwnRedis::start(redis_port);
    for node in &nodes {
        time_until(
            Duration::from_secs(10),
            "whole again after Redis",
            || async {
                let r = anon.get(node.url("/readyz")).send().await.unwrap();
                r.status() == 200 && r.json::<Value>().await.unwrap()["degraded"] == json!([])
            },
        )
        .await;
    }
    let tokens = password_grant(&anon, b, "alice").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        status(&anon, anon.get(c.url("/v1/me")).bearer_auth(&access)).await,
        200
    );
    // ... and counting is back in Redis.
    let r = wrong_password_from(&anon, c, "203.0.113.51").await;
    assert_eq!(r.status(), 401);
    let mut raw = redis::Client::open(redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let counted: Option<u64> = redis::cmd("GET")
        .arg(format!("{prefix}c:fail:ip:203.0.113.51"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(counted, Some(1), "the failure is counted in Redis");

    // PostgreSQL goes away: nothing can be checked, so nothing is accepted.
    pg_proxy.cut();
    for node in &nodes {
        time_until(
            Duration::from_secs(5),
            "bearer refused without PostgreSQL",
            || async {
                let code = status(&anon, anon.get(node.url("/v1/me")).bearer_auth(&access)).await;
                code == 503
            },
        )
        .await;
        assert_eq!(status(&anon, anon.get(node.url("/readyz"))).await, 503);
        assert_eq!(
            status(&anon, anon.get(node.url("/healthz"))).await,
            200,
            "the process itself is up"
        );
        // Introspection consults only the in-memory set: it fails closed
        // once the set cannot have been refreshed for two seconds.
        time_until(
            Duration::from_secs(5),
            "introspection fails closed",
            || async { introspect_active(&anon, node, &access).await.is_none() },
        )
        .await;
    }
    pg_proxy.restore();
    for node in &nodes {
        time_until(
            Duration::from_secs(15),
            "recovered after PostgreSQL",
            || async {
                status(&anon, anon.get(node.url("/v1/me")).bearer_auth(&access)).await == 200
                    && status(&anon, anon.get(node.url("/readyz"))).await == 200
            },
        )
        .await;
    }

    // A password change on A replaces the session: its old cookie, already
    // cached on B and C, is refused there within a second.
    let (old_cookie, csrf) = cookie_sign_in(&anon, a, "alice").await;
    for node in [b, c] {
        assert_eq!(
            status(
                &anon,
                anon.get(node.url("/v1/me")).header("cookie", &old_cookie)
            )
            .await,
            200
        );
    }
    let r = anon
        .post(a.url("/v1/me/password"))
        .header("cookie", &old_cookie)
        .header("x-csrf-token", &csrf)
        .json(
            &json!({ "current_password": PASSWORD, "new_password": "an entirely new passphrase" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let changed_at = Instant::now();
    for node in [b, c] {
        time_until(
            Duration::from_secs(1),
            "old cookie refused after password change",
            || async {
                status(
                    &anon,
                    anon.get(node.url("/v1/me")).header("cookie", &old_cookie),
                )
                .await
                    == 401
            },
        )
        .await;
    }
    println!(
        "old cookie refused on B and C {:?} after the password change on A",
        changed_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"]
async fn postgres_alone_fans_revocations_out_with_listen_notify() {
    let schema = fresh_database().await;
    let node_db_url = database_url_in(&schema);
    let kek = KeyEncryptionKey::generate().unwrap().to_base64();
    let env: Vec<(&str, &str)> = vec![
        ("TESSERA_DATABASE_URL", node_db_url.as_str()),
        ("TESSERA_KEY_ENCRYPTION_KEY", kek.as_str()),
        ("TESSERA_PUBLIC_URL", PUBLIC_URL),
        // The test talks to each node by address, not through a balancer.
        ("TESSERA_HOSTS", "127.0.0.1"),
        ("TESSERA_INTROSPECTION_SECRET", SECRET),
        // A low limit for the brute-force drill; the drill's addresses are
        // forwarded by the test, everything else comes from 127.0.0.1.
        ("TESSERA_RATE_LIMIT__LOGIN_ATTEMPTS", "3"),
        ("TESSERA_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = Server::start(dirs[0].path(), &env);
    let b = Server::start(dirs[1].path(), &env);
    let anon = reqwest::Client::new();
    let r = anon
        .post(a.url("/v1/users"))
        .json(&json!({ "username": "bob", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let tokens = password_grant(&anon, &a, "bob").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect_active(&anon, &a, &access).await, Some(true));
    assert_eq!(
        status(&anon, anon.get(b.url("/v1/me")).bearer_auth(&access)).await,
        200
    );
    let r = anon
        .post(b.url("/v1/token/revoke"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let took = time_until(
        Duration::from_secs(1),
        "revocation via PostgreSQL",
        || async { introspect_active(&anon, &a, &access).await == Some(false) },
    )
    .await;
    println!("revocation via PostgreSQL LISTEN/NOTIFY reached the other node in {took:?}");
    assert_eq!(
        status(&anon, anon.get(a.url("/v1/me")).bearer_auth(&access)).await,
        401
    );
}
