//! `tessera bench`: sessions against tokens, measured on this machine.
//!
//! Starts servers in this process on loopback (the configured store, or an
//! embedded one), drives them with a small HTTP/1.1 load generator (one
//! connection per task, closed loop, or paced for latency at a fixed rate),
//! and prints one table. Every figure is also given as a ratio to the same
//! server's unauthenticated endpoint measured in the same run, because a
//! shared machine is noisy and only ratios travel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde::Serialize;
use serde_json::Value;
use tessera_core::Tessera;
use tessera_core::audit::{AuditEvent, AuditKind};
use tessera_core::client::ClientInfo;
use tessera_core::keys::Algorithm;
use tessera_core::secret::{Secret, SecretKind};
use tessera_core::session::{Session, SessionId, SessionKind};
use tessera_core::session_cache::SessionCache;
use tessera_core::user::UserRecord;
use tessera_http::csrf::OriginPolicy;
use tessera_http::{AppState, app};

use crate::config::{Database, Settings};
use crate::wiring;

const PASSWORD: &str = "bench-password-correct-horse";

/// Options of `tessera bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Seconds of load per scenario.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Concurrent connections per scenario.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Bench this store instead of a fresh embedded one (`postgres://…`).
    #[arg(long)]
    database_url: Option<String>,
    /// Add Redis in front of the store.
    #[arg(long)]
    redis_url: Option<String>,
    /// Sessions created to measure bytes per session.
    #[arg(long, default_value_t = 20_000)]
    sessions: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// In the sign-in overload cases, wait as long as `Retry-After` says
    /// before retrying a 503 (a polite client); by default clients retry at
    /// once, as an attacker does.
    #[arg(long)]
    honour_retry_after: bool,
}

/// One measured scenario.
#[derive(Debug, Clone, Serialize)]
struct Row {
    scenario: String,
    requests: u64,
    errors: u64,
    per_second: f64,
    p50_us: u64,
    p99_us: u64,
    /// Throughput relative to the unauthenticated endpoint of the same server,
    /// measured in alternating half-second windows.
    ratio_to_ceiling: Option<f64>,
}

impl Row {
    /// A row from sorted latencies (µs) over `elapsed`, with no ratio yet.
    fn new(scenario: String, sorted: &[u32], errors: u64, elapsed: Duration) -> Self {
        Self {
            scenario,
            requests: sorted.len() as u64,
            errors,
            per_second: sorted.len() as f64 / elapsed.as_secs_f64(),
            p50_us: percentile(sorted, 0.50),
            p99_us: percentile(sorted, 0.99),
            ratio_to_ceiling: None,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    store: String,
    duration_s: u64,
    connections: usize,
    rows: Vec<Row>,
    /// p99 of `/v1/me` (cookie) paced at half its maximum rate.
    me_p99_at_half_load_us: u64,
    me_p99_idle_us: u64,
    me_p99_during_sign_in_saturation_us: u64,
    argon2_capacity_per_second: f64,
    sign_in_to_argon2_capacity: f64,
    store_bytes_per_session: Option<f64>,
    cache_bytes_per_session: f64,
    cache_bytes_per_session_estimate: usize,
    revocation_refused_after_us: u64,
    /// Sign-in with far more clients than the hashing pool can serve.
    sign_in_overload: Vec<Overload>,
}

/// Concurrent sign-in clients in the overload cases: a small attack, and one
/// far beyond any queue a core's worth of Argon2id drains in a second.
const OVERLOAD_CLIENTS: [usize; 2] = [64, 256];

/// One sign-in overload case.
#[derive(Debug, Clone, Serialize)]
struct Overload {
    clients: usize,
    /// How clients retry a 503: `"at once"` (the attack) or `"after Retry-After"`.
    retry: &'static str,
    /// Goodput: successful sign-ins per second.
    sign_ins_per_second: f64,
    /// Goodput against the Argon2id capacity measured just before and after.
    goodput_to_argon2_capacity: f64,
    argon2_capacity_per_second: f64,
    /// 503 answers per second, and how many of them lacked `Retry-After`.
    busy_per_second: f64,
    busy_without_retry_after: u64,
    /// Answers that were neither a session nor a 503 (should be none).
    errors: u64,
    /// `GET /v1/me` (cookie, paced at 200/s) p99 during the overload, alone
    /// in the windows between, and their ratio.
    me_p99_us: u64,
    me_p99_idle_us: u64,
    me_p99_to_idle: f64,
}

/// How an overload client retries a 503.
#[derive(Debug, Clone, Copy)]
enum Retry {
    /// At once: the attack.
    AtOnce,
    /// After the `Retry-After` the server asked for.
    AsTold,
}

/// What a load task sends, and what it keeps between requests.
#[derive(Clone)]
enum Work {
    Get {
        path: &'static str,
        header: Option<(&'static str, String)>,
    },
    Refresh,
    SignIn,
}

/// Runs the benchmark and prints the report.
pub async fn run(args: BenchArgs, mut settings: Settings) -> anyhow::Result<()> {
    if args.connections == 0 || args.duration == 0 {
        bail!("--connections and --duration must be at least 1");
    }
    let scratch = tempfile_dir()?;
    settings.cookie.secure = false;
    settings.listen = "127.0.0.1:0".parse().context("loopback address")?;
    // The servers measured are on loopback, whatever the configuration says.
    settings.origins = OriginPolicy::new(Some("http://127.0.0.1"), &[])
        .map_err(|e| anyhow::anyhow!("loopback origin: {e}"))?;
    settings.rate_limit.login_attempts = 1_000_000;
    settings.rate_limit.registrations = 1_000_000;
    settings.data_dir = scratch.clone();
    settings.database = match &args.database_url {
        Some(url) => Database::Postgres(url.as_str().into()),
        None => Database::Sqlite(scratch.join("bench.db")),
    };
    settings.redis = args
        .redis_url
        .clone()
        .map(|url| (url.into(), format!("bench{}:", std::process::id())));
    let main = Node::start(settings.clone(), "main").await?;
    let store_name = main.describe.clone();

    progress("preparing users and sessions");
    let http = Loader::new(main.addr);
    http.json_post(
        "/v1/users",
        &format!(r#"{{"username":"bench","password":"{PASSWORD}"}}"#),
    )
    .await?;
    let cookie = http.cookie_sign_in().await?;
    let access = http.access_token().await?;

    let duration = Duration::from_secs(args.duration);
    let conns = args.connections;
    let mut rows = Vec::new();
    let healthz = Work::Get {
        path: "/healthz",
        header: None,
    };
    rows.push(
        measure(
            &http,
            "unauthenticated GET /healthz (ceiling)",
            healthz.clone(),
            conns,
            duration,
            None,
        )
        .await?,
    );
    let cookie_row = measure(
        &http,
        "GET /v1/me by cookie",
        Work::Get {
            path: "/v1/me",
            header: Some(("cookie", cookie.clone())),
        },
        conns,
        duration,
        Some(&healthz),
    )
    .await?;
    let cookie_rps = cookie_row.per_second;
    rows.push(cookie_row);
    rows.push(
        measure(
            &http,
            "GET /v1/me by bearer (EdDSA)",
            Work::Get {
                path: "/v1/me",
                header: Some(("authorization", format!("Bearer {access}"))),
            },
            conns,
            duration,
            Some(&healthz),
        )
        .await?,
    );
    for algorithm in [Algorithm::ES256, Algorithm::RS256, Algorithm::HS256] {
        let mut alt = settings.clone();
        let dir = scratch.join(algorithm.as_str());
        alt.data_dir = dir.clone();
        alt.database = Database::Sqlite(dir.join("bench.db"));
        alt.redis = None;
        alt.algorithm = algorithm;
        let node = Node::start(alt, algorithm.as_str()).await?;
        let loader = Loader::new(node.addr);
        loader
            .json_post(
                "/v1/users",
                &format!(r#"{{"username":"bench","password":"{PASSWORD}"}}"#),
            )
            .await?;
        let token = loader.access_token().await?;
        let mut row = measure(
            &loader,
            &format!("GET /v1/me by bearer ({})", algorithm.as_str()),
            Work::Get {
                path: "/v1/me",
                header: Some(("authorization", format!("Bearer {token}"))),
            },
            conns,
            duration,
            Some(&healthz),
        )
        .await?;
        row.scenario.push_str(" [own embedded server]");
        rows.push(row);
        node.stop().await;
    }
    rows.push(
        measure(
            &http,
            "POST /v1/token refresh_token",
            Work::Refresh,
            conns,
            duration,
            None,
        )
        .await?,
    );
    let workers = main.core.context.config().hash_workers;
    let sign_in_clients = (workers * 4).max(conns.min(8));
    let (sign_in, capacity) =
        sign_in_against_capacity(&http, &main.core, sign_in_clients, duration).await?;
    let sign_in_rps = sign_in.per_second;
    rows.push(sign_in);

    progress("latency at half load");
    let me = Work::Get {
        path: "/v1/me",
        header: Some(("cookie", cookie.clone())),
    };
    let half = paced(&http, me.clone(), cookie_rps / 2.0, conns, duration).await?;
    let idle = paced(&http, me.clone(), 200.0, 4, duration).await?;
    progress("latency while sign-ins saturate the hashing pool");
    let during = {
        let me = me.clone();
        let background = {
            let http = http.clone();
            let n = workers * 4;
            tokio::spawn(async move {
                closed_loop(
                    &http,
                    Work::SignIn,
                    n,
                    duration + Duration::from_millis(500),
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(250)).await;
        let during = paced(&http, me, 200.0, 4, duration).await?;
        let _ = background.await;
        during
    };
    let retry = if args.honour_retry_after {
        Retry::AsTold
    } else {
        Retry::AtOnce
    };
    let mut overload = Vec::new();
    for clients in OVERLOAD_CLIENTS {
        let case = sign_in_overload(
            &http,
            &main.core,
            clients,
            retry,
            sign_in_clients,
            duration,
            me.clone(),
        )
        .await?;
        overload.push(case);
    }

    progress("bytes per session");
    let store_bytes = store_bytes_per_session(&main.core, args.sessions).await?;
    let (cache_bytes, cache_estimate) = cache_bytes_per_session(args.sessions.max(100_000));

    progress("revocation");
    let revocation = revocation_time(&http).await?;
    main.stop().await;

    let report = Report {
        machine: machine(),
        store: store_name,
        duration_s: args.duration,
        connections: conns,
        rows,
        me_p99_at_half_load_us: half.p99_us,
        me_p99_idle_us: idle.p99_us,
        me_p99_during_sign_in_saturation_us: during.p99_us,
        argon2_capacity_per_second: capacity,
        sign_in_to_argon2_capacity: if capacity > 0.0 {
            sign_in_rps / capacity
        } else {
            0.0
        },
        store_bytes_per_session: store_bytes,
        cache_bytes_per_session: cache_bytes,
        cache_bytes_per_session_estimate: cache_estimate,
        revocation_refused_after_us: revocation,
        sign_in_overload: overload,
    };
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serialising the report")?
        );
    } else {
        print_table(&report);
    }
    Ok(())
}

fn progress(what: &str) {
    use std::io::Write as _;
    eprint!("\r\x1b[2Ktessera bench: {what} …");
    let _ = std::io::stderr().flush();
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}

/// A server running in this process.
struct Node {
    addr: SocketAddr,
    core: Arc<Tessera>,
    backend: wiring::Backend,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    describe: String,
}

impl Node {
    async fn start(settings: Settings, name: &str) -> anyhow::Result<Self> {
        progress(&format!("starting the {name} server"));
        let backend = wiring::open_store(&settings).await?;
        let core = wiring::domain(&settings, &backend, true).await?;
        let mut tasks = backend.start_revocation_sync(core.revocations.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding loopback")?;
        let addr = listener.local_addr().context("local address")?;
        let state = AppState::new(core.clone(), wiring::http_config(&settings));
        let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, service).await;
        }));
        let describe = backend.describe(&settings);
        Ok(Self {
            addr,
            core,
            backend,
            tasks,
            describe,
        })
    }

    async fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
        self.backend.close().await;
    }
}

/// A minimal HTTP/1.1 client for loopback load.
#[derive(Clone)]
struct Loader {
    addr: SocketAddr,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

impl Loader {
    fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    async fn connect(&self) -> anyhow::Result<Sender> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .context("connecting")?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    async fn send(
        &self,
        sender: &mut Sender,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(u16, hyper::HeaderMap, Bytes)> {
        sender.ready().await.context("connection not ready")?;
        let response = sender
            .send_request(request)
            .await
            .context("request failed")?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the body")?
            .to_bytes();
        Ok((status, headers, body))
    }

    async fn once(
        &self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(u16, hyper::HeaderMap, Bytes)> {
        let mut sender = self.connect().await?;
        self.send(&mut sender, request).await
    }

    async fn json_post(&self, path: &str, body: &str) -> anyhow::Result<Value> {
        let (status, _, body) = self.once(json_request(path, body)?).await?;
        if !(200..300).contains(&status) {
            bail!(
                "POST {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn cookie_sign_in(&self) -> anyhow::Result<String> {
        let body = format!(r#"{{"username":"bench","password":"{PASSWORD}"}}"#);
        let (status, headers, _) = self.once(json_request("/v1/session", &body)?).await?;
        if status != 200 {
            bail!("sign-in answered {status}");
        }
        let cookie = headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .context("no cookie")?;
        Ok(cookie.to_owned())
    }

    async fn tokens(&self) -> anyhow::Result<(String, String)> {
        let body = format!("grant_type=password&username=bench&password={PASSWORD}");
        let (status, _, body) = self.once(form_request("/v1/token", &body)?).await?;
        if status != 200 {
            bail!("password grant answered {status}");
        }
        let value: Value = serde_json::from_slice(&body).context("token response")?;
        let access = value
            .get("access_token")
            .unwrap_or(&Value::Null)
            .as_str()
            .context("access_token")?
            .to_owned();
        let refresh = value
            .get("refresh_token")
            .unwrap_or(&Value::Null)
            .as_str()
            .context("refresh_token")?
            .to_owned();
        Ok((access, refresh))
    }

    async fn access_token(&self) -> anyhow::Result<String> {
        Ok(self.tokens().await?.0)
    }
}

fn json_request(path: &str, body: &str) -> anyhow::Result<Request<Full<Bytes>>> {
    Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .context("building a request")
}

fn form_request(path: &str, body: &str) -> anyhow::Result<Request<Full<Bytes>>> {
    Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_owned())))
        .context("building a request")
}

fn build(work: &Work, refresh: &str) -> anyhow::Result<Request<Full<Bytes>>> {
    match work {
        Work::Get { path, header } => {
            let mut builder = Request::get(*path).header("host", "127.0.0.1");
            if let Some((name, value)) = header {
                builder = builder.header(*name, value.as_str());
            }
            builder
                .body(Full::new(Bytes::new()))
                .context("building a request")
        }
        Work::Refresh => form_request(
            "/v1/token",
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
        ),
        Work::SignIn => json_request(
            "/v1/session",
            &format!(r#"{{"username":"bench","password":"{PASSWORD}"}}"#),
        ),
    }
}

/// Latencies (µs) and errors of one connection's run.
struct Sample {
    latencies: Vec<u32>,
    errors: u64,
}

async fn connection_loop(
    loader: Loader,
    work: Work,
    until: Instant,
    pace: Option<Duration>,
) -> anyhow::Result<Sample> {
    let mut sender = loader.connect().await?;
    let mut refresh = match work {
        Work::Refresh => loader.tokens().await?.1,
        _ => String::new(),
    };
    let mut sample = Sample {
        latencies: Vec::new(),
        errors: 0,
    };
    let mut next = Instant::now();
    while Instant::now() < until {
        if let Some(pace) = pace {
            next += pace;
            let now = Instant::now();
            if next > now {
                tokio::time::sleep(next - now).await;
            }
        }
        let started = Instant::now();
        let outcome = loader.send(&mut sender, build(&work, &refresh)?).await;
        let elapsed = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        match outcome {
            Ok((200, _, body)) => {
                if matches!(work, Work::Refresh) {
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    if let Some(next_refresh) =
                        value.get("refresh_token").unwrap_or(&Value::Null).as_str()
                    {
                        refresh = next_refresh.to_owned();
                    }
                }
                sample.latencies.push(elapsed);
            }
            Ok(_) => sample.errors += 1,
            Err(_) => {
                sample.errors += 1;
                sender = loader.connect().await?;
            }
        }
    }
    Ok(sample)
}

async fn closed_loop(
    loader: &Loader,
    work: Work,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Vec<u32>, u64, Duration)> {
    drive(loader, work, connections, duration, None).await
}

async fn drive(
    loader: &Loader,
    work: Work,
    connections: usize,
    duration: Duration,
    pace: Option<Duration>,
) -> anyhow::Result<(Vec<u32>, u64, Duration)> {
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(connection_loop(loader.clone(), work.clone(), until, pace)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let sample = task.await.context("load task")??;
        latencies.extend(sample.latencies);
        errors += sample.errors;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok((latencies, errors, elapsed))
}

fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(rank.min(sorted.len() - 1))
        .map_or(0, |v| u64::from(*v))
}

/// A short, unmeasured run that fills caches and connection pools.
async fn warm_up(loader: &Loader, work: &Work, connections: usize) -> anyhow::Result<()> {
    drive(
        loader,
        work.clone(),
        connections,
        Duration::from_millis(300),
        None,
    )
    .await?;
    Ok(())
}

/// Half a second of the scenario, half a second of its reference, in turn
/// for the whole duration: both see the same machine, so their ratio holds
/// even when other work on a shared machine comes and goes.
const INTERLEAVE_WINDOW: Duration = Duration::from_millis(500);

async fn measure(
    loader: &Loader,
    name: &str,
    work: Work,
    connections: usize,
    duration: Duration,
    reference: Option<&Work>,
) -> anyhow::Result<Row> {
    progress(name);
    warm_up(loader, &work, connections).await?;
    let Some(reference) = reference else {
        let (latencies, errors, elapsed) = drive(loader, work, connections, duration, None).await?;
        return Ok(Row::new(name.to_owned(), &latencies, errors, elapsed));
    };
    let rounds = (duration.as_millis() / (2 * INTERLEAVE_WINDOW.as_millis())).max(1);
    let (mut latencies, mut errors, mut elapsed) = (Vec::new(), 0, Duration::ZERO);
    let (mut reference_count, mut reference_elapsed) = (0usize, Duration::ZERO);
    for _ in 0..rounds {
        let (done, _, took) = drive(
            loader,
            reference.clone(),
            connections,
            INTERLEAVE_WINDOW,
            None,
        )
        .await?;
        reference_count += done.len();
        reference_elapsed += took;
        let (done, failed, took) =
            drive(loader, work.clone(), connections, INTERLEAVE_WINDOW, None).await?;
        latencies.extend(done);
        errors += failed;
        elapsed += took;
    }
    latencies.sort_unstable();
    let mut row = Row::new(name.to_owned(), &latencies, errors, elapsed);
    let reference_per_second = reference_count as f64 / reference_elapsed.as_secs_f64();
    row.ratio_to_ceiling =
        (reference_per_second > 0.0).then(|| row.per_second / reference_per_second);
    Ok(row)
}

async fn paced(
    loader: &Loader,
    work: Work,
    rate: f64,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    let per_connection = (rate / connections as f64).max(1.0);
    let pace = Duration::from_secs_f64(1.0 / per_connection);
    let (latencies, errors, elapsed) =
        drive(loader, work, connections, duration, Some(pace)).await?;
    Ok(Row::new(
        format!("paced at {rate:.0}/s"),
        &latencies,
        errors,
        elapsed,
    ))
}

/// Sign-in windows alternate with windows of the hashing pool alone, so
/// both see the same machine. A second each: a sign-in takes ~10 ms of
/// hashing, and a window must hold enough of them to count.
const SIGN_IN_WINDOW: Duration = Duration::from_secs(1);

/// Sign-in throughput, and what the Argon2id parameters allow: verifications
/// per second with every hashing worker busy and nothing else to do.
async fn sign_in_against_capacity(
    loader: &Loader,
    core: &Tessera,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Row, f64)> {
    progress("POST /v1/session (sign-in) against the Argon2id capacity");
    warm_up(loader, &Work::SignIn, connections).await?;
    let rounds = (duration.as_millis() / (2 * SIGN_IN_WINDOW.as_millis())).max(2);
    let (mut latencies, mut errors, mut elapsed) = (Vec::new(), 0, Duration::ZERO);
    let mut capacity = 0.0;
    for _ in 0..rounds {
        capacity += core
            .sign_in_guard
            .password_check_throughput(SIGN_IN_WINDOW, connections)
            .await?;
        let (done, failed, took) =
            drive(loader, Work::SignIn, connections, SIGN_IN_WINDOW, None).await?;
        latencies.extend(done);
        errors += failed;
        elapsed += took;
    }
    latencies.sort_unstable();
    let row = Row::new(
        "POST /v1/session (sign-in)".to_owned(),
        &latencies,
        errors,
        elapsed,
    );
    Ok((row, capacity / rounds as f64))
}

/// Sign-ins, and 503s that carried no `Retry-After`, counted while the
/// overload is measured (not while the queue fills or drains).
#[derive(Default)]
struct OverloadCounts {
    measuring: std::sync::atomic::AtomicBool,
    signed_in: std::sync::atomic::AtomicU64,
    busy: std::sync::atomic::AtomicU64,
    busy_without_retry_after: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
}

impl OverloadCounts {
    fn count(&self, counter: &std::sync::atomic::AtomicU64) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.measuring.load(Relaxed) {
            counter.fetch_add(1, Relaxed);
        }
    }
}

/// Half a second for `clients` sign-in requests to arrive and the hashing
/// queue to reach its steady state before the overload is measured.
const OVERLOAD_RAMP: Duration = Duration::from_millis(500);

/// One measured stretch of overload. Short stretches alternate with the
/// references (the hashing pool alone, `/v1/me` alone): on a shared machine
/// the CPU left to this process changes within seconds.
const OVERLOAD_SEGMENT: Duration = Duration::from_secs(2);

/// `/v1/me` (cookie) paced at 200/s over 4 connections: light, so its p99 is
/// the server's responsiveness, not queueing behind the load generator.
const ME_PACE: Duration = Duration::from_millis(20);
const ME_CONNECTIONS: usize = 4;

/// `clients` connections signing in over and over, each retrying a 503 as
/// `retry` says, in rounds of: `/v1/me` alone for its idle p99, the hashing
/// pool alone for its capacity (with `in_flight` checks), then a segment of
/// overload with `/v1/me` paced alongside. The requests in flight finish
/// between rounds, so each reference sees an idle server.
async fn sign_in_overload(
    loader: &Loader,
    core: &Tessera,
    clients: usize,
    retry: Retry,
    in_flight: usize,
    duration: Duration,
    me: Work,
) -> anyhow::Result<Overload> {
    use std::sync::atomic::Ordering::Relaxed;
    progress(&format!(
        "sign-in overload: {clients} clients retrying {}",
        retry_name(retry)
    ));
    let rounds = (duration.as_millis() / OVERLOAD_SEGMENT.as_millis()).max(1);
    let counts = Arc::new(OverloadCounts::default());
    let (mut idle, mut during) = (Vec::new(), Vec::new());
    let (mut capacity, mut measured) = (0.0, Duration::ZERO);
    for _ in 0..rounds {
        let (alone, _, _) = drive(
            loader,
            me.clone(),
            ME_CONNECTIONS,
            SIGN_IN_WINDOW,
            Some(ME_PACE),
        )
        .await?;
        idle.extend(alone);
        capacity += core
            .sign_in_guard
            .password_check_throughput(SIGN_IN_WINDOW, in_flight)
            .await?;
        let until = Instant::now() + OVERLOAD_RAMP + OVERLOAD_SEGMENT;
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                tokio::spawn(overload_client(
                    loader.clone(),
                    counts.clone(),
                    until,
                    retry,
                ))
            })
            .collect();
        tokio::time::sleep(OVERLOAD_RAMP).await;
        counts.measuring.store(true, Relaxed);
        let started = Instant::now();
        let (alongside, _, _) = drive(
            loader,
            me.clone(),
            ME_CONNECTIONS,
            OVERLOAD_SEGMENT,
            Some(ME_PACE),
        )
        .await?;
        counts.measuring.store(false, Relaxed);
        measured += started.elapsed();
        during.extend(alongside);
        for task in tasks {
            task.await.context("overload client")??;
        }
    }
    idle.sort_unstable();
    during.sort_unstable();
    let capacity = capacity / rounds as f64;
    let seconds = measured.as_secs_f64();
    let per_second = counts.signed_in.load(Relaxed) as f64 / seconds;
    let (me_p99_us, me_p99_idle_us) = (percentile(&during, 0.99), percentile(&idle, 0.99));
    Ok(Overload {
        clients,
        retry: retry_name(retry),
        sign_ins_per_second: per_second,
        goodput_to_argon2_capacity: if capacity > 0.0 {
            per_second / capacity
        } else {
            0.0
        },
        argon2_capacity_per_second: capacity,
        busy_per_second: counts.busy.load(Relaxed) as f64 / seconds,
        busy_without_retry_after: counts.busy_without_retry_after.load(Relaxed),
        errors: counts.errors.load(Relaxed),
        me_p99_us,
        me_p99_idle_us,
        me_p99_to_idle: me_p99_us as f64 / me_p99_idle_us.max(1) as f64,
    })
}

fn retry_name(retry: Retry) -> &'static str {
    match retry {
        Retry::AtOnce => "at once",
        Retry::AsTold => "after Retry-After",
    }
}

/// One client signing in over and over on one connection until `until`.
async fn overload_client(
    loader: Loader,
    counts: Arc<OverloadCounts>,
    until: Instant,
    retry: Retry,
) -> anyhow::Result<()> {
    let mut sender = loader.connect().await?;
    while Instant::now() < until {
        match loader.send(&mut sender, build(&Work::SignIn, "")?).await {
            Ok((200, _, _)) => counts.count(&counts.signed_in),
            Ok((503, headers, _)) => {
                counts.count(&counts.busy);
                let hint = headers
                    .get(hyper::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                match (retry, hint) {
                    (_, None) => counts.count(&counts.busy_without_retry_after),
                    (Retry::AsTold, Some(seconds)) => {
                        let wake = Instant::now() + Duration::from_secs(seconds);
                        tokio::time::sleep_until(wake.min(until).into()).await;
                    }
                    (Retry::AtOnce, Some(_)) => {}
                }
            }
            Ok(_) => counts.count(&counts.errors),
            Err(_) => {
                counts.count(&counts.errors);
                sender = loader.connect().await?;
            }
        }
    }
    Ok(())
}

/// Store growth per cookie session, from the store's own accounting.
async fn store_bytes_per_session(core: &Tessera, sessions: usize) -> anyhow::Result<Option<f64>> {
    let store = core.context.store_handle();
    let Some(UserRecord {
        user,
        password_hash,
    }) = store.user_by_username("bench").await?
    else {
        bail!("bench user missing");
    };
    let before = store.session_storage_bytes().await?;
    let now = core.context.now();
    for _ in 0..sessions {
        let secret = Secret::generate(SecretKind::Session)?;
        let session = Session {
            id: SessionId::generate()?,
            kind: SessionKind::Cookie,
            user_id: user.id,
            secret_hash: secret.hash(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now + time::Duration::minutes(30),
            absolute_expires_at: now + time::Duration::hours(12),
            remember_me: false,
            ip: Some("203.0.113.10".parse().context("ip")?),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36".into()),
        };
        let event = AuditEvent::new(
            AuditKind::SignInSucceeded,
            Some(user.id),
            &ClientInfo::new(session.ip, session.user_agent.as_deref()),
            now,
            serde_json::json!({ "session_id": session.id.as_str() }),
        );
        store
            .insert_session(&session, &event, &password_hash)
            .await?;
    }
    let after = store.session_storage_bytes().await?;
    Ok(match (before, after) {
        (Some(b), Some(a)) if sessions > 0 => Some(a.saturating_sub(b) as f64 / sessions as f64),
        _ => None,
    })
}

/// Resident memory growth per session put in a fresh cache, and the
/// cache's own per-entry estimate.
fn cache_bytes_per_session(sessions: usize) -> (f64, usize) {
    let cache = SessionCache::new();
    let now = time::OffsetDateTime::now_utc();
    let mut made = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let Ok(secret) = Secret::generate(SecretKind::Session) else {
            break;
        };
        let Ok(id) = SessionId::generate() else { break };
        made.push(Session {
            id,
            kind: SessionKind::Cookie,
            user_id: uuid::Uuid::new_v4(),
            secret_hash: secret.hash(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now,
            absolute_expires_at: now,
            remember_me: false,
            ip: None,
            user_agent: None,
        });
    }
    let before = resident_bytes();
    for session in &made {
        cache.put(session);
    }
    let after = resident_bytes();
    let grown = after.saturating_sub(before) as f64 / made.len().max(1) as f64;
    (grown, SessionCache::bytes_per_session())
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// From a revocation answered to the first refused request, on the same node.
async fn revocation_time(loader: &Loader) -> anyhow::Result<u64> {
    let (access, refresh) = loader.tokens().await?;
    let me = Work::Get {
        path: "/v1/me",
        header: Some(("authorization", format!("Bearer {access}"))),
    };
    let mut sender = loader.connect().await?;
    let (status, _, _) = loader.send(&mut sender, build(&me, "")?).await?;
    if status != 200 {
        bail!("the token did not work before its revocation ({status})");
    }
    let started = Instant::now();
    loader
        .once(form_request(
            "/v1/token/revoke",
            &format!("token={refresh}"),
        )?)
        .await?;
    loop {
        let (status, _, _) = loader.send(&mut sender, build(&me, "")?).await?;
        if status == 401 {
            return Ok(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
        if started.elapsed() > Duration::from_secs(5) {
            bail!("the revoked token was still accepted after 5 s");
        }
    }
}

fn print_table(report: &Report) {
    println!("Tessera bench — {} — {}", report.machine, report.store);
    println!(
        "{} s per scenario, {} connections, loopback, server and load in one process",
        report.duration_s, report.connections
    );
    println!();
    println!(
        "{:<58} {:>10} {:>9} {:>9} {:>8}",
        "scenario", "req/s", "p50 µs", "p99 µs", "vs ceil"
    );
    for row in &report.rows {
        let ratio = row
            .ratio_to_ceiling
            .map_or_else(|| "—".to_owned(), |r| format!("{:.0}%", r * 100.0));
        let errors = if row.errors > 0 {
            format!("  ({} errors)", row.errors)
        } else {
            String::new()
        };
        println!(
            "{:<58} {:>10.0} {:>9} {:>9} {:>8}{errors}",
            row.scenario, row.per_second, row.p50_us, row.p99_us, ratio
        );
    }
    println!();
    println!(
        "GET /v1/me (cookie) p99 at half its maximum rate: {} µs",
        report.me_p99_at_half_load_us
    );
    println!(
        "GET /v1/me (cookie) p99 idle: {} µs; while sign-ins saturate the hashing pool: {} µs ({:.1}×)",
        report.me_p99_idle_us,
        report.me_p99_during_sign_in_saturation_us,
        report.me_p99_during_sign_in_saturation_us as f64 / report.me_p99_idle_us.max(1) as f64
    );
    println!(
        "sign-in: {:.0}% of what Argon2id allows on this machine ({:.1}/s)",
        report.sign_in_to_argon2_capacity * 100.0,
        report.argon2_capacity_per_second
    );
    for case in &report.sign_in_overload {
        println!(
            "sign-in overload, {} clients retrying {}: {:.0}% of the Argon2id capacity ({:.1} of {:.1}/s), {:.0} × 503/s{}; GET /v1/me p99 {} µs ({:.1}× its {} µs idle)",
            case.clients,
            case.retry,
            case.goodput_to_argon2_capacity * 100.0,
            case.sign_ins_per_second,
            case.argon2_capacity_per_second,
            case.busy_per_second,
            if case.busy_without_retry_after > 0 {
                format!(" ({} without Retry-After)", case.busy_without_retry_after)
            } else {
                String::new()
            },
            case.me_p99_us,
            case.me_p99_to_idle,
            case.me_p99_idle_us,
        );
    }
    match report.store_bytes_per_session {
        Some(bytes) => println!("store: {bytes:.0} bytes per cookie session"),
        None => println!("store: bytes per session not reported by this store"),
    }
    println!(
        "in-process cache: {:.0} bytes per session measured ({} estimated)",
        report.cache_bytes_per_session, report.cache_bytes_per_session_estimate
    );
    println!(
        "revoked token refused {} µs after the revocation answered",
        report.revocation_refused_after_us
    );
}
