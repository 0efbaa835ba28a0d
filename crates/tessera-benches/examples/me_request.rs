//! A driver for instruction counts of the hottest request: `GET /v1/me`
//! with a session cookie, through the whole router (every middleware, the
//! cached session, the JSON answer), in process, one request at a time.
//!
//! `cargo build --release -p tessera-benches --example me_request`, then
//! `valgrind --tool=callgrind target/release/examples/me_request N [log]`
//! for two values of N: the difference of the two totals, divided by the
//! difference of the Ns, is one request's instructions, with start-up and
//! sign-in cancelled out. With `log`, the server's default subscriber
//! (text, `info`) is installed, writing to nowhere, as `tessera serve` has
//! one.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tessera_core::clock::SystemClock;
use tessera_core::key_wrap::KeyEncryptionKey;
use tessera_core::password::HashCost;
use tessera_core::{Tessera, TesseraConfig};
use tessera_http::csrf::OriginPolicy;
use tessera_http::{AppState, HttpConfig, app};
use tessera_store_sqlite::SqliteStore;
use tower::ServiceExt as _;

const BASE: &str = "http://127.0.0.1:8080";
const HOST: &str = "127.0.0.1:8080";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let requests: u64 = args.next().unwrap_or_else(|| "1000".into()).parse()?;
    let mode = args.next();
    if mode.as_deref() == Some("log") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(std::io::sink)
            .with_ansi(false)
            .init();
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(drive(requests, mode.as_deref() == Some("time")))
}

async fn drive(requests: u64, timed: bool) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await?);
    store.migrate().await?;
    let mut config = TesseraConfig {
        hash_cost: HashCost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..TesseraConfig::default()
    };
    config.tokens.issuer = BASE.into();
    config.tokens.audience = BASE.into();
    let core = Arc::new(
        Tessera::open(
            store,
            Arc::new(SystemClock),
            config,
            KeyEncryptionKey::generate()?,
        )
        .await?,
    );
    let mut http = HttpConfig::default();
    http.cookie.secure = false;
    http.origins = OriginPolicy::new(Some(BASE), &[])?;
    let router = app(AppState::new(core, http))?;

    let body = r#"{"username":"bench","password":"correct horse battery staple"}"#;
    for path in ["/v1/users", "/v1/session"] {
        let request = Request::post(path)
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))?;
        let response = router.clone().oneshot(request).await?;
        if !response.status().is_success() {
            return Err(format!("{path}: {}", response.status()).into());
        }
        if path == "/v1/session" {
            let cookie = response
                .headers()
                .get(header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .ok_or("no session cookie")?
                .to_owned();
            if timed {
                return time(&router, &cookie, requests).await;
            }
            let bytes = get(&router, "/v1/me", Some(&cookie), requests).await?;
            println!("{requests} requests, {bytes} bytes answered");
            return Ok(());
        }
    }
    Err("not signed in".into())
}

/// `requests` requests of `path`, with `cookie` if given; the bytes answered.
async fn get(
    router: &tessera_http::App,
    path: &str,
    cookie: Option<&str>,
    requests: u64,
) -> Result<usize, Box<dyn std::error::Error>> {
    let mut bytes = 0;
    for _ in 0..requests {
        let mut request = Request::get(path).header(header::HOST, HOST);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = router.clone().oneshot(request.body(Body::empty())?).await?;
        if response.status() != StatusCode::OK {
            return Err(format!("{path}: {}", response.status()).into());
        }
        bytes += response.into_body().collect().await?.to_bytes().len();
    }
    Ok(bytes)
}

/// `/healthz` and `/v1/me` timed in turn; medians of five rounds.
async fn time(
    router: &tessera_http::App,
    cookie: &str,
    requests: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut healthz = Vec::new();
    let mut me = Vec::new();
    for _ in 0..5 {
        for (path, cookie, times) in [
            ("/healthz", None, &mut healthz),
            ("/v1/me", Some(cookie), &mut me),
        ] {
            let started = std::time::Instant::now();
            get(router, path, cookie, requests).await?;
            times.push(started.elapsed().as_nanos() as f64 / requests as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let (h, m) = (median(&mut healthz), median(&mut me));
    println!(
        "ns per request (median of 5 x {requests}): /healthz {h:.0}, /v1/me {m:.0}, ratio {:.3}",
        h / m
    );
    Ok(())
}
