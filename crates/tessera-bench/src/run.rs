//! The whole benchmark, scenario by scenario, and its report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tessera_core::client::ClientInfo;
use tessera_core::keys::Algorithm;
use tessera_core::oauth_clients::NewClient;
use tessera_http::csrf::OriginPolicy;
use tessera_server::config::{Database, Settings};

use crate::args::BenchArgs;
use crate::capacity::Argon2Capacity;
use crate::client::{Loader, PASSWORD};
use crate::first_sight::first_sight;
use crate::load::{CODE_REDIRECT, Work, closed_loop};
use crate::memory::{RedisHolds, cache_bytes_per_session, store_bytes_per_session};
use crate::node::Node;
use crate::overload::{OVERLOAD_CLIENTS, Retry, sign_in_overload};
use crate::progress::progress;
use crate::report::{Report, machine};
use crate::scenarios::{measure, paced, revocation_time, sign_in_against_capacity};
use crate::table::print_table;

/// The user whose sessions the bytes-per-session figures count.
const MEMORY_USER: &str = "bench-memory";

/// Runs the benchmark and prints the report.
pub async fn run(args: BenchArgs, settings: Settings) -> anyhow::Result<()> {
    if args.connections == 0 || args.duration == 0 {
        bail!("--connections and --duration must be at least 1");
    }
    if let Some(sessions) = args.populate {
        return crate::scale::run(args, settings, sessions).await;
    }
    let scratch = tempfile_dir()?;
    let mut settings = loopback(settings, &scratch)?;
    settings.database = match &args.database_url {
        Some(url) => Database::Postgres(url.as_str().into()),
        None => Database::Sqlite(scratch.join("bench.db")),
    };
    // A prefix of this run's own, as long as the default `tessera:`: Redis's
    // bytes per session depend on the keys' length.
    settings.redis = args.redis_url.clone().map(|url| {
        let prefix = format!("tb{:05}:", std::process::id() % 100_000);
        (url.into(), prefix)
    });
    // Bytes per session first, on a server of its own: resident memory then
    // grows only by what the cache takes in (not refilling pages the
    // allocator kept from earlier work), and the measured server's store and
    // cache do not carry the sessions made for it.
    let (store_bytes, cache_bytes, cache_estimate, redis_figures) = {
        let mut alt = settings.clone();
        if let Database::Sqlite(_) = alt.database {
            let dir = scratch.join("memory");
            alt.data_dir = dir.clone();
            alt.database = Database::Sqlite(dir.join("bench.db"));
        }
        let node = Node::start(alt, "memory").await?;
        Loader::new(node.addr)
            .json_post(
                "/v1/users",
                &format!(r#"{{"username":"{MEMORY_USER}","password":"{PASSWORD}"}}"#),
            )
            .await?;
        progress("bytes per session");
        let (store_bytes, secrets) =
            store_bytes_per_session(node.store(), &node.core, MEMORY_USER, args.sessions).await?;
        let secrets = std::sync::Arc::new(secrets);
        // The lookups that fill the in-process cache fill Redis's too.
        let redis_before = match node.redis() {
            Some(redis) => Some(RedisHolds::now(redis).await?),
            None => None,
        };
        let (cache_bytes, cache_estimate) =
            cache_bytes_per_session(&node.core, &secrets, node.redis().is_some()).await?;
        let redis_figures = match (node.redis(), redis_before) {
            (Some(redis), Some(before)) => Some(
                RedisHolds::now(redis)
                    .await?
                    .per_session(before, secrets.len()),
            ),
            _ => None,
        };
        drop(secrets);
        node.stop().await;
        (store_bytes, cache_bytes, cache_estimate, redis_figures)
    };
    let main = Node::start(settings.clone(), "main").await?;
    let store_name = main.describe.clone();
    let capacity = Argon2Capacity::like(main.core.context.config())?;

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
    // What a reverse proxy asks before every request it passes on: it
    // should cost what /v1/me costs.
    rows.push(
        measure(
            &http,
            "GET /v1/auth/forward by cookie",
            Work::Get {
                path: "/v1/auth/forward",
                header: Some(("cookie", cookie.clone())),
            },
            conns,
            duration,
            Some(&healthz),
        )
        .await?,
    );
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
    let (first, baseline, first_sight) = first_sight(&main, &http, conns).await?;
    rows.extend([first, baseline]);
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
    // A whole authorization-code flow but the sign-in (the browser's
    // cookie session is made once): the code issued, then exchanged for a
    // new token session. Its ratio is to the refresh rate.
    let client_id = code_flow_client(&main).await?;
    rows.push(
        measure(
            &http,
            "authorization-code flow (code + exchange; ratio to refresh)",
            Work::CodeFlow {
                client_id,
                cookie: cookie.clone(),
            },
            conns,
            duration,
            Some(&Work::Refresh),
        )
        .await?,
    );
    let workers = main.core.context.config().hash_workers;
    let sign_in_clients = (workers * 4).max(conns.min(8));
    let (sign_in, allowed) =
        sign_in_against_capacity(&http, &capacity, sign_in_clients, duration).await?;
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
            &capacity,
            clients,
            retry,
            sign_in_clients,
            duration,
            me.clone(),
        )
        .await?;
        overload.push(case);
    }

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
        argon2_capacity_per_second: allowed,
        sign_in_to_argon2_capacity: if allowed > 0.0 {
            sign_in_rps / allowed
        } else {
            0.0
        },
        store_bytes_per_session: store_bytes,
        cache_bytes_per_session: cache_bytes,
        cache_bytes_per_session_estimate: cache_estimate,
        redis_bytes_per_session: redis_figures.map(|(bytes, _)| bytes),
        redis_keys_per_session: redis_figures.map(|(_, keys)| keys),
        revocation_refused_after_us: revocation,
        sign_in_overload: overload,
        first_sight,
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

/// Registers the public, first-party client the code-flow scenario signs
/// in with; its id.
async fn code_flow_client(node: &Node) -> anyhow::Result<String> {
    let (client, _) = node
        .core
        .clients
        .register(
            NewClient {
                name: "bench".to_owned(),
                redirect_uris: vec![CODE_REDIRECT.to_owned()],
                post_logout_redirect_uris: Vec::new(),
                public: true,
                skip_consent: true,
                id_token_signed_response_alg: None,
            },
            &ClientInfo::new(None, Some("tessera-bench")),
        )
        .await
        .context("registering the bench's OAuth client")?;
    Ok(client.id.to_string())
}

/// `settings` for servers on loopback, whatever the configuration says,
/// that never refuse the bench's sign-ins, with their data in `scratch`.
pub(crate) fn loopback(mut settings: Settings, scratch: &Path) -> anyhow::Result<Settings> {
    settings.cookie.secure = false;
    settings.listen = "127.0.0.1:0".parse().context("loopback address")?;
    settings.origins = OriginPolicy::new(Some("http://127.0.0.1"), &[])
        .map_err(|e| anyhow::anyhow!("loopback origin: {e}"))?;
    settings.rate_limit.login_attempts = 1_000_000;
    settings.rate_limit.registrations = 1_000_000;
    settings.data_dir = scratch.to_path_buf();
    Ok(settings)
}

/// A scratch directory for the embedded stores, removed at the end.
pub(crate) fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
