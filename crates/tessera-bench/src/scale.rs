//! `tessera bench --populate N`: the figures that depend on how much the
//! store holds. A store is filled with N sessions over N/10 users (a tenth
//! of them expired, a quarter token sessions) and N revocations; a
//! reference store holds only the sessions the bench requests. Both are
//! served at once and measured in alternating windows, and the populated
//! store's figures are given as ratios to the reference's: cold `GET
//! /v1/me` by cookie, refresh rotation, then the sweep of the expired
//! sessions under light load, and the revocation set a node loads at start.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tessera_core::password::PasswordHasher;
use tessera_core::revocations::Revocations;
use tessera_server::config::Settings;
use zeroize::Zeroizing;

use crate::args::BenchArgs;
use crate::client::{Loader, PASSWORD, form_request};
use crate::latency::Latencies;
use crate::load::{Run, Work, build};
use crate::memory::resident_bytes;
use crate::node::Node;
use crate::populate::{Counts, Lifetimes, Plan, Population, populate};
use crate::progress::progress;
use crate::report::{Row, machine};
use crate::run::{loopback, tempfile_dir};
use crate::scale_table::print_scale;
use crate::scenarios::INTERLEAVE_WINDOW;
use crate::scratch_store::ScratchStore;
use crate::spend::{self, Cookies, Phase, Spend, Tokens};

/// Fewest sessions `--populate` takes (a tenth are users, a tenth expired).
const FEWEST: usize = 100;
/// Most cookie secrets kept: more than cold requests can use in a run.
const SAMPLE: usize = 60_000;
/// Cookies kept aside for the load during the sweep.
const SWEEP_COOKIES: usize = 6_000;
/// The light load during the sweep: cold `GET /v1/me` on 4 connections and
/// refreshes on 2, each connection every 20 ms (200/s and 100/s).
const SWEEP_PACE: Duration = Duration::from_millis(20);
/// How long that load runs before the sweep, for its latencies without it.
const BEFORE_SWEEP: Duration = Duration::from_secs(2);

/// Everything `--populate` measured. Its field names are the `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct ScaleReport {
    pub(crate) machine: String,
    pub(crate) store: String,
    pub(crate) duration_s: u64,
    pub(crate) connections: usize,
    pub(crate) populated: Counts,
    pub(crate) reference: Counts,
    pub(crate) checks: Checks,
    /// `GET /v1/me` by the cookie of a session no request used before.
    pub(crate) cold_me: Compared,
    /// `POST /v1/token` (`refresh_token`).
    pub(crate) refresh: Compared,
    pub(crate) sweep: Sweep,
    pub(crate) revocation_set: RevocationLoad,
}

/// Statuses of requests made with populated credentials, before measuring.
#[derive(Debug, Serialize)]
pub(crate) struct Checks {
    /// `GET /v1/me` with a live session's cookie (200).
    pub(crate) populated_cookie: u16,
    /// `GET /v1/me` with an expired session's cookie (401).
    pub(crate) expired_cookie: u16,
    /// `POST /v1/token` with a live token session's refresh token (200).
    pub(crate) populated_refresh: u16,
}

/// One kind of request on the populated store and on the reference.
#[derive(Debug, Serialize)]
pub(crate) struct Compared {
    pub(crate) populated: Row,
    pub(crate) reference: Row,
    /// The populated store's figure over the reference's.
    pub(crate) per_second_ratio: f64,
    pub(crate) p50_ratio: f64,
    pub(crate) p99_ratio: f64,
}

/// Latencies of paced requests over a stretch.
#[derive(Debug, Serialize)]
pub(crate) struct Stretch {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) max_us: u64,
}

/// The sweeper's pass over the populated store.
#[derive(Debug, Serialize)]
pub(crate) struct Sweep {
    /// Expired sessions written, and sessions the pass deleted.
    pub(crate) expired_sessions: usize,
    pub(crate) deleted_sessions: u64,
    pub(crate) seconds: f64,
    pub(crate) rows_per_second: f64,
    /// Cold `GET /v1/me` (200/s) and refreshes (100/s) before the pass and
    /// while it ran.
    pub(crate) me_before: Stretch,
    pub(crate) me_during: Stretch,
    pub(crate) refresh_before: Stretch,
    pub(crate) refresh_during: Stretch,
}

/// The revocation set with every populated revocation.
#[derive(Debug, Serialize)]
pub(crate) struct RevocationLoad {
    pub(crate) entries: usize,
    /// Resident memory the set took as it was read from the store into an
    /// empty one, per entry, and how long that took.
    pub(crate) bytes_per_entry: f64,
    pub(crate) load_ms: f64,
    /// A node's start (store, keys, revocation set), and the reference's.
    pub(crate) node_start_ms: f64,
    pub(crate) reference_node_start_ms: f64,
}

/// Runs `--populate sessions` and prints its report.
pub(crate) async fn run(
    args: BenchArgs,
    settings: Settings,
    sessions: usize,
) -> anyhow::Result<()> {
    if sessions < FEWEST {
        bail!("--populate needs at least {FEWEST} sessions");
    }
    if args.redis_url.is_some() {
        bail!("--populate measures the store alone: leave out --redis-url");
    }
    let scratch = tempfile_dir()?;
    let measured = match loopback(settings, &scratch) {
        Ok(settings) => measure(&args, &settings, &scratch, sessions).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let report = measured?;
    eprintln!();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serialising the report")?
        );
    } else {
        print_scale(&report, sessions);
    }
    Ok(())
}

/// Makes, fills and measures both stores, removing them whatever happens.
async fn measure(
    args: &BenchArgs,
    settings: &Settings,
    scratch: &Path,
    sessions: usize,
) -> anyhow::Result<ScaleReport> {
    let postgres = args.database_url.as_deref();
    progress("hashing the users' password");
    let password_hash = PasswordHasher::new(settings.hash_cost, 1, 1)
        .context("password hashing")?
        .hash(Zeroizing::new(PASSWORD.to_owned()))
        .await
        .context("hashing the users' password")?;
    let lifetimes = Lifetimes {
        cookie: settings.session.lifetimes(false),
        token: (
            settings.tokens.refresh_idle_ttl,
            settings.tokens.refresh_absolute_ttl,
        ),
    };
    let (big_store, loading) = ScratchStore::make(settings, scratch, "populated", postgres).await?;
    let plan = Plan {
        sessions,
        users: sessions / 10,
        mixed: true,
        revocations: sessions,
        sample: SAMPLE,
    };
    let big = populate(
        loading.bulk(),
        plan,
        lifetimes,
        &password_hash,
        "populating",
    )
    .await;
    loading.close().await;
    let mut stores = vec![big_store];
    let measured = match big {
        Ok(big) => {
            reference_and_measure(
                args,
                settings,
                scratch,
                big,
                lifetimes,
                &password_hash,
                &mut stores,
            )
            .await
        }
        Err(e) => Err(e),
    };
    for store in stores {
        if let Err(e) = store.remove().await {
            eprintln!("\ntessera bench: {e:#}");
        }
    }
    measured
}

/// Makes and fills the reference store (added to `stores`), then measures.
async fn reference_and_measure(
    args: &BenchArgs,
    settings: &Settings,
    scratch: &Path,
    mut big: Population,
    lifetimes: Lifetimes,
    password_hash: &str,
    stores: &mut Vec<ScratchStore>,
) -> anyhow::Result<ScaleReport> {
    let reserve = SWEEP_COOKIES.min(big.cookies.len() / 4);
    let sweep_cookies = big.cookies.split_off(big.cookies.len() - reserve);
    let (small_store, loading) =
        ScratchStore::make(settings, scratch, "reference", args.database_url.as_deref()).await?;
    // A user per session: the populated sessions requested belong to
    // different users nearly always, so no request finds its user cached.
    let sessions = big.cookies.len().max(FEWEST);
    let plan = Plan {
        sessions,
        users: sessions,
        mixed: false,
        revocations: 0,
        sample: big.cookies.len(),
    };
    let small = populate(
        loading.bulk(),
        plan,
        lifetimes,
        password_hash,
        "reference store",
    )
    .await;
    loading.close().await;
    let small_settings = small_store.settings.clone();
    let big_settings = stores
        .first()
        .map(|s| s.settings.clone())
        .context("the populated store")?;
    stores.push(small_store);
    let small = small?;

    let starts = Instant::now();
    let small_node = Node::start(small_settings, "reference").await?;
    let small_start = starts.elapsed();
    let starts = Instant::now();
    let big_node = match Node::start(big_settings, "populated").await {
        Ok(node) => node,
        Err(e) => {
            small_node.stop().await;
            return Err(e);
        }
    };
    let big_start = starts.elapsed();
    let measured = measure_nodes(
        args,
        (&big_node, big_start),
        (&small_node, small_start),
        big,
        small,
        sweep_cookies,
    )
    .await;
    big_node.stop().await;
    small_node.stop().await;
    measured
}

/// The measurements on both running nodes (each with the time it took to
/// start).
async fn measure_nodes(
    args: &BenchArgs,
    (big, big_start): (&Node, Duration),
    (small, small_start): (&Node, Duration),
    population: Population,
    reference: Population,
    sweep_cookies: Vec<tessera_core::secret::Secret>,
) -> anyhow::Result<ScaleReport> {
    let duration = Duration::from_secs(args.duration);
    let conns = args.connections;
    let big_http = Loader::new(big.addr);
    let small_http = Loader::new(small.addr);
    progress("signing in on both servers");
    let mut big_tokens = Vec::with_capacity(conns);
    let mut small_tokens = Vec::with_capacity(conns);
    let mut cookie_name = String::new();
    for (http, tokens) in [
        (&big_http, &mut big_tokens),
        (&small_http, &mut small_tokens),
    ] {
        http.json_post(
            "/v1/users",
            &format!(r#"{{"username":"bench","password":"{PASSWORD}"}}"#),
        )
        .await?;
        let cookie = http.cookie_sign_in().await?;
        cookie_name = cookie
            .split_once('=')
            .map(|(name, _)| name.to_owned())
            .context("a cookie without a name")?;
        for _ in 0..conns {
            tokens.push(http.tokens().await?.1);
        }
    }
    let cookie =
        |secret: &tessera_core::secret::Secret| format!("{cookie_name}={}", secret.expose());

    progress("requests with populated credentials");
    let mut cold: Vec<String> = population.cookies.iter().map(cookie).collect();
    let checked = cold.pop().context("no populated session to request")?;
    let expired = population
        .expired_cookie
        .as_ref()
        .context("no expired session populated")?;
    let refresh = population
        .refresh
        .as_ref()
        .context("no token session populated")?;
    let checks = Checks {
        populated_cookie: me_status(&big_http, checked).await?,
        expired_cookie: me_status(&big_http, cookie(expired)).await?,
        populated_refresh: big_http
            .once(form_request(
                "/v1/token",
                &format!(
                    "grant_type=refresh_token&refresh_token={}",
                    refresh.expose()
                ),
            )?)
            .await?
            .0,
    };
    if (
        checks.populated_cookie,
        checks.expired_cookie,
        checks.populated_refresh,
    ) != (200, 401, 200)
    {
        bail!("the server does not take the populated sessions as it should: {checks:?}");
    }

    progress("cold GET /v1/me by cookie");
    let big_cold = Spend::Cookies(Arc::new(Cookies::new(cold)));
    let small_cold = Spend::Cookies(Arc::new(Cookies::new(
        reference.cookies.iter().map(cookie).collect(),
    )));
    let cold_me = alternate(
        "cold GET /v1/me by cookie",
        (&big_http, &big_cold),
        (&small_http, &small_cold),
        conns,
        duration,
    )
    .await?;
    progress("POST /v1/token refresh_token");
    let big_refresh = Spend::Refresh(Arc::new(Tokens::new(big_tokens)));
    let small_refresh = Spend::Refresh(Arc::new(Tokens::new(small_tokens)));
    let refresh = alternate(
        "POST /v1/token refresh_token",
        (&big_http, &big_refresh),
        (&small_http, &small_refresh),
        conns,
        duration,
    )
    .await?;

    progress("the sweep of expired sessions");
    let sweep = sweep(
        big,
        &big_http,
        Spend::Cookies(Arc::new(Cookies::new(
            sweep_cookies.iter().map(cookie).collect(),
        ))),
        big_refresh,
        population.counts.expired_sessions,
    )
    .await?;

    progress("loading the revocation set");
    let revocation_set = revocation_load(big).await?;
    Ok(ScaleReport {
        machine: machine(),
        store: big.describe.clone(),
        duration_s: args.duration,
        connections: conns,
        populated: population.counts,
        reference: reference.counts,
        checks,
        cold_me,
        refresh,
        sweep,
        revocation_set: RevocationLoad {
            node_start_ms: big_start.as_secs_f64() * 1e3,
            reference_node_start_ms: small_start.as_secs_f64() * 1e3,
            ..revocation_set
        },
    })
}

/// `node`'s revocations read from its store into an empty set, as at its
/// start: how long it took and the resident memory it added, per entry.
async fn revocation_load(node: &Node) -> anyhow::Result<RevocationLoad> {
    // Let the allocator give back what earlier work freed, so that the
    // set's memory shows as growth rather than reuse.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident_bytes();
    let fresh = Revocations::new(node.core.context.clone());
    let started = Instant::now();
    fresh.sync().await.context("loading the revocation set")?;
    let load = started.elapsed();
    let grown = resident_bytes().saturating_sub(before);
    let entries = fresh.set().len();
    drop(fresh);
    Ok(RevocationLoad {
        entries,
        bytes_per_entry: grown as f64 / entries.max(1) as f64,
        load_ms: load.as_secs_f64() * 1e3,
        node_start_ms: 0.0,
        reference_node_start_ms: 0.0,
    })
}

/// The status of `GET /v1/me` with `cookie`.
async fn me_status(http: &Loader, cookie: String) -> anyhow::Result<u16> {
    let request = build(
        &Work::Get {
            path: "/v1/me",
            header: Some(("cookie", cookie)),
        },
        "",
    )?;
    Ok(http.once(request).await?.0)
}

/// The same requests on the populated node and the reference, in
/// alternating windows so both see the same machine.
async fn alternate(
    name: &str,
    (big_http, big): (&Loader, &Spend),
    (small_http, small): (&Loader, &Spend),
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Compared> {
    let rounds = (duration.as_millis() / (2 * INTERLEAVE_WINDOW.as_millis())).max(1);
    let mut runs = [empty_run()?, empty_run()?];
    for _ in 0..rounds {
        for (into, (http, spend)) in runs.iter_mut().zip([(small_http, small), (big_http, big)]) {
            let run = spend::window(http, spend, connections, INTERLEAVE_WINDOW).await?;
            into.latencies.add(&run.latencies)?;
            into.errors += run.errors;
            into.elapsed += run.elapsed;
        }
    }
    let [small_run, big_run] = runs;
    let populated = Row::of(format!("{name} (populated)"), &big_run);
    let reference = Row::of(format!("{name} (reference)"), &small_run);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Ok(Compared {
        per_second_ratio: ratio(populated.per_second, reference.per_second),
        p50_ratio: ratio(populated.p50_us as f64, reference.p50_us as f64),
        p99_ratio: ratio(populated.p99_us as f64, reference.p99_us as f64),
        populated,
        reference,
    })
}

fn empty_run() -> anyhow::Result<Run> {
    Ok(Run {
        latencies: Latencies::new()?,
        errors: 0,
        elapsed: Duration::ZERO,
    })
}

/// The sweeper's pass on `node`, timed, with cold `GET /v1/me` (spending
/// `cookies`) and refreshes (`tokens`) at a light pace before and during it.
async fn sweep(
    node: &Node,
    http: &Loader,
    cookies: Spend,
    tokens: Spend,
    expired: usize,
) -> anyhow::Result<Sweep> {
    let phase = Phase::new();
    let me = spend::start(http, &cookies, 4, Some(SWEEP_PACE), &phase, 2);
    let refresh = spend::start(http, &tokens, 2, Some(SWEEP_PACE), &phase, 2);
    tokio::time::sleep(BEFORE_SWEEP).await;
    phase.advance();
    let started = Instant::now();
    let swept = node.core.sweeper.sweep_expired().await;
    let seconds = started.elapsed().as_secs_f64();
    phase.advance();
    let me = spend::finish(me, 2).await?;
    let refresh = spend::finish(refresh, 2).await?;
    let deleted = swept.context("the sweep failed")?;
    let stretch = |runs: &spend::PhaseRuns, phase: usize| {
        runs.get(phase).map_or(
            Stretch {
                requests: 0,
                errors: 0,
                p50_us: 0,
                p99_us: 0,
                max_us: 0,
            },
            |(latencies, errors)| Stretch {
                requests: latencies.count(),
                errors: *errors,
                p50_us: latencies.percentile(0.50),
                p99_us: latencies.percentile(0.99),
                max_us: latencies.percentile(1.0),
            },
        )
    };
    Ok(Sweep {
        expired_sessions: expired,
        deleted_sessions: deleted,
        seconds,
        rows_per_second: deleted as f64 / seconds.max(1e-9),
        me_before: stretch(&me, 0),
        me_during: stretch(&me, 1),
        refresh_before: stretch(&refresh, 0),
        refresh_during: stretch(&refresh, 1),
    })
}
