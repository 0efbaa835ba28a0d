//! A rolling restart under load loses no request: three `tessera serve`
//! nodes on one PostgreSQL database behind a round-robin TCP balancer that
//! does what load balancers do (a connection goes to the next node whose
//! `/readyz`, polled every 100 ms, said 200, and to the next one that
//! accepts it when a node refuses, as nginx's `proxy_next_upstream error`
//! does); clients keep reading `/v1/me` by
//! cookie and by bearer token and rotating refresh tokens while each node
//! in turn gets SIGTERM, drains (`shutdown_drain`: `/readyz` 503,
//! `Connection: close` on every answer), stops, and starts again. Every
//! answer must be a 2xx, and every node must serve again after its restart.
//!
//! Needs `TEST_DATABASE_URL` (scripts/test sets it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Server, database_url_in, free_port, fresh_database};
use serde_json::{Value, json};
use tessera_core::key_wrap::KeyEncryptionKey;

const PASSWORD: &str = "correct horse battery staple";
const WORKERS: usize = 6;

/// A round-robin TCP balancer: each connection to the next backend that
/// is ready and accepts one; connections counted per backend.
struct Balancer {
    addr: SocketAddr,
    served: Arc<Vec<AtomicU64>>,
    task: tokio::task::JoinHandle<()>,
    probe: tokio::task::JoinHandle<()>,
}

impl Balancer {
    async fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served: Arc<Vec<AtomicU64>> =
            Arc::new(backends.iter().map(|_| AtomicU64::new(0)).collect());
        let ready: Arc<Vec<AtomicBool>> =
            Arc::new(backends.iter().map(|_| AtomicBool::new(true)).collect());
        // The health check: /readyz of each node, every 100 ms.
        let probe = {
            let ready = ready.clone();
            let backends = backends.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_millis(500))
                    .build()
                    .unwrap();
                loop {
                    for (i, backend) in backends.iter().enumerate() {
                        let ok = http
                            .get(format!("http://{backend}/readyz"))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200);
                        ready[i].store(ok, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let task = {
            let served = served.clone();
            tokio::spawn(async move {
                let mut next = 0usize;
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    let start = next;
                    next = (next + 1) % backends.len();
                    let backends = backends.clone();
                    let served = served.clone();
                    let ready = ready.clone();
                    tokio::spawn(async move {
                        // Ready nodes first, in turn; the others only when
                        // none of those accepts.
                        let mut order: Vec<usize> = (0..backends.len())
                            .map(|i| (start + i) % backends.len())
                            .collect();
                        order.sort_by_key(|&i| !ready[i].load(Ordering::Relaxed));
                        for index in order {
                            if let Ok(mut server) =
                                tokio::net::TcpStream::connect(backends[index]).await
                            {
                                served[index].fetch_add(1, Ordering::Relaxed);
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut server).await;
                                return;
                            }
                        }
                    });
                }
            })
        };
        Self {
            addr,
            served,
            task,
            probe,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn served(&self, index: usize) -> u64 {
        self.served[index].load(Ordering::Relaxed)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
        self.probe.abort();
    }
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn record(
        &self,
        what: &str,
        outcome: Result<reqwest::Response, reqwest::Error>,
    ) -> Option<reqwest::Response> {
        match outcome {
            Ok(r) if r.status().is_success() => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                Some(r)
            }
            Ok(r) => {
                self.failures
                    .lock()
                    .unwrap()
                    .push(format!("{what}: {}", r.status()));
                None
            }
            Err(e) => {
                self.failures.lock().unwrap().push(format!("{what}: {e}"));
                None
            }
        }
    }
}

/// One client of its own (one connection at a time, renewed now and then), reading `/v1/me` by
/// cookie and by bearer and rotating its own refresh token, until `stop`.
async fn worker(
    base: String,
    cookie: String,
    tokens: Value,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let new_client = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    };
    let mut client = new_client();
    let mut access = tokens["access_token"].as_str().unwrap().to_owned();
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        // Clients come and go: a new connection now and then, which the
        // balancer sends to the next node.
        if round.is_multiple_of(20) {
            client = new_client();
        }
        let r = client
            .get(format!("{base}/v1/me"))
            .header("cookie", &cookie)
            .send()
            .await;
        tally.record("GET /v1/me (cookie)", r);
        let r = client
            .get(format!("{base}/v1/me"))
            .bearer_auth(&access)
            .send()
            .await;
        tally.record("GET /v1/me (bearer)", r);
        if round.is_multiple_of(5) {
            let r = client
                .post(format!("{base}/v1/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                ])
                .send()
                .await;
            if let Some(r) = tally.record("POST /v1/token (refresh)", r) {
                let body: Value = r.json().await.unwrap();
                access = body["access_token"].as_str().unwrap().to_owned();
                refresh = body["refresh_token"].as_str().unwrap().to_owned();
            }
        }
    }
}

async fn ready(client: &reqwest::Client, node: &Server) -> bool {
    client
        .get(node.url("/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/test sets TEST_DATABASE_URL and runs it"]
async fn a_rolling_restart_under_load_answers_every_request() {
    let schema = fresh_database().await;
    let database_url = database_url_in(&schema);
    let kek = KeyEncryptionKey::generate().unwrap().to_base64();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let listens: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let balancer = Balancer::start(listens.iter().map(|l| l.parse().unwrap()).collect()).await;
    let public_url = format!("http://{}", balancer.addr);
    let env_for = |listen: &str| -> Vec<(String, String)> {
        vec![
            ("TESSERA_LISTEN".into(), listen.to_owned()),
            ("TESSERA_DATABASE_URL".into(), database_url.clone()),
            ("TESSERA_KEY_ENCRYPTION_KEY".into(), kek.to_string()),
            ("TESSERA_PUBLIC_URL".into(), public_url.clone()),
            ("TESSERA_HOSTS".into(), "127.0.0.1".into()),
            ("TESSERA_COOKIE__SECURE".into(), "false".into()),
            ("TESSERA_SHUTDOWN_DRAIN".into(), "2s".into()),
        ]
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let start = |i: usize| {
        let env = env_for(&listens[i]);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start(dirs[i].path(), &env)
    };
    let mut nodes: Vec<Option<Server>> = (0..3).map(|i| Some(start(i))).collect();

    let anon = reqwest::Client::new();
    let r = anon
        .post(balancer.url("/v1/users"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = anon
        .post(balancer.url("/v1/session"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
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
    let mut chains = Vec::new();
    for _ in 0..WORKERS {
        let r = anon
            .post(balancer.url("/v1/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        chains.push(r.json::<Value>().await.unwrap());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = chains
        .into_iter()
        .map(|tokens| {
            tokio::spawn(worker(
                balancer.url(""),
                cookie.clone(),
                tokens,
                stop.clone(),
                tally.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    #[allow(clippy::needless_range_loop)] // `start(i)` and the balancer count by index too
    for i in 0..3 {
        let node = nodes[i].take().unwrap();
        let before = tally.ok.load(Ordering::Relaxed);
        // SIGTERM: the node drains for 2 s, then stops; the others carry on.
        let (status, log) = tokio::task::spawn_blocking(move || node.terminate())
            .await
            .unwrap();
        assert!(status.success(), "node {i} exited with {status}: {log:#?}");
        assert!(
            log.iter().any(|l| l.contains("draining")),
            "node {i} did not drain: {log:#?}"
        );
        assert!(
            tally.ok.load(Ordering::Relaxed) > before,
            "no request was answered while node {i} stopped"
        );
        let restarted = start(i);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(&anon, &restarted).await {
            assert!(Instant::now() < deadline, "node {i} did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let served = balancer.served(i);
        nodes[i] = Some(restarted);
        // Until the balancer has sent the restarted node work of its own.
        let deadline = Instant::now() + Duration::from_secs(30);
        while balancer.served(i) <= served {
            assert!(
                Instant::now() < deadline,
                "node {i} got no connection after its restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let failures = tally.failures.lock().unwrap().clone();
    let ok = tally.ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {failures:#?}",
        failures.len(),
        ok + failures.len() as u64
    );
    assert!(ok > 300, "too little load to prove anything: {ok} requests");
    // A drained node refuses readiness: checked on a live one here.
    let node = nodes[0].as_ref().unwrap();
    assert!(ready(&anon, node).await);
}
