//! Turning settings into running parts: logging, the store (embedded, or
//! PostgreSQL with optional Redis), the domain service, the fan-out.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tessera_core::clock::SystemClock;
use tessera_core::store::Store;
use tessera_core::{Tessera, TesseraConfig};
use tessera_http::HttpConfig;
use tessera_store_postgres::PgStore;
use tessera_store_redis::{Redis, RedisLayer};
use tessera_store_sqlite::SqliteStore;
use tokio::task::JoinHandle;

use crate::config::{Database, Settings};

/// Connections per node to PostgreSQL.
const POSTGRES_POOL: u32 = 16;
/// Without a push from another node, the store is read this often for
/// revocations anyway: well within a second.
const REVOCATION_SYNC_INTERVAL: Duration = Duration::from_millis(250);
/// Access tokens are refused (503) when the revocation set could not be
/// refreshed for this long.
pub const REVOCATION_MAX_STALENESS: Duration = Duration::from_secs(2);

/// Logs to stderr, filtered by `RUST_LOG` if set, else by the `log` key.
pub fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&settings.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// The opened store and the concrete parts behind it.
pub struct Backend {
    /// What the domain uses.
    pub store: Arc<dyn Store>,
    sqlite: Option<Arc<SqliteStore>>,
    postgres: Option<Arc<PgStore>>,
    redis: Option<Arc<Redis>>,
}

impl Backend {
    /// A line for the log saying where data lives.
    pub fn describe(&self, settings: &Settings) -> String {
        let store = match &settings.database {
            Database::Sqlite(path) => format!("embedded SQLite store at {}", path.display()),
            Database::Postgres(url) => format!("PostgreSQL at {}", redact(url)),
        };
        match &settings.redis {
            Some((url, prefix)) => format!("{store}, Redis at {} (prefix {prefix})", redact(url)),
            None => store,
        }
    }

    /// Closes every connection (checkpointing SQLite's WAL).
    pub async fn close(&self) {
        if let Some(sqlite) = &self.sqlite {
            sqlite.close().await;
        }
        if let Some(postgres) = &self.postgres {
            postgres.close().await;
        }
    }

    /// Keeps `core`'s revocation set current: on every push from another
    /// node (Redis pub/sub, else PostgreSQL NOTIFY) and at least four times
    /// a second from the store, so a lost push costs at most that delay.
    /// With Redis, also pings it so the cache is flushed after an outage.
    pub fn start_revocation_sync(&self, core: Arc<Tessera>) -> Vec<JoinHandle<()>> {
        let pushed = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        let notify = {
            let pushed = pushed.clone();
            move || pushed.notify_one()
        };
        if let Some(redis) = &self.redis {
            tasks.push(redis.subscribe_revocations(notify));
            let redis = redis.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tick.tick().await;
                    // Errors are logged where they arise; readiness reports them.
                    let _ = redis.ping().await;
                }
            }));
        } else if let Some(postgres) = &self.postgres {
            tasks.push(postgres.listen_revocations(notify));
        }
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(REVOCATION_SYNC_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = pushed.notified() => {}
                }
                match core.sync_revocations().await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("revocation sync recovered");
                    }
                    Ok(_) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "revocation sync failing; access tokens are refused until it recovers");
                    }
                    Err(_) => {}
                }
            }
        }));
        tasks
    }
}

/// A URL without its password.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) => {
            let host = url.get(at + 1..).unwrap_or_default();
            let user = rest.split(['@', ':']).next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// Opens the configured store, creating the embedded store's directory
/// (owner-only) and applying migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Backend> {
    let (store, sqlite, postgres): (Arc<dyn Store>, _, _) = match &settings.database {
        Database::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dir(dir)?;
            }
            let store = SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot open the SQLite store at {}", path.display()))?;
            store.migrate().await.context("cannot migrate the store")?;
            restrict_to_owner(path)?;
            let store = Arc::new(store);
            (store.clone(), Some(store), None)
        }
        Database::Postgres(url) => {
            let store = PgStore::connect(url, POSTGRES_POOL)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))?;
            store
                .migrate()
                .await
                .context("cannot migrate the PostgreSQL store")?;
            let store = Arc::new(store);
            (store.clone(), None, Some(store))
        }
    };
    let (store, redis): (Arc<dyn Store>, _) = match &settings.redis {
        None => (store, None),
        Some((url, prefix)) => {
            let redis = Redis::connect(url, prefix)
                .await
                .with_context(|| format!("cannot connect to Redis at {}", redact(url)))?;
            (Arc::new(RedisLayer::new(store, redis.clone())), Some(redis))
        }
    };
    Ok(Backend {
        store,
        sqlite,
        postgres,
        redis,
    })
}

/// Creates `dir` if needed, readable by the owner only: it holds the
/// database and its keys.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// The database holds password hashes and private signing keys: owner
/// only (`0600`), whatever the umask. SQLite gives its -wal and -shm files
/// the database file's permissions.
fn restrict_to_owner(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict the permissions of {}", path.display()))?;
    }
    Ok(())
}

/// The domain service over `store`, with its keys and revocations loaded.
/// `serving` bounds revocation staleness (a command-line run has no sync loop).
pub async fn domain(
    settings: &Settings,
    backend: &Backend,
    serving: bool,
) -> anyhow::Result<Arc<Tessera>> {
    let workers = settings.hash_workers;
    let config = TesseraConfig {
        session: settings.session,
        hash_cost: settings.hash_cost,
        hash_workers: workers,
        hash_queue: workers * 1024,
        tokens: settings.tokens.clone(),
        algorithm: settings.algorithm,
        revocation_max_staleness: serving.then_some(REVOCATION_MAX_STALENESS),
        rate_limit: settings.rate_limit,
    };
    let core = Tessera::open(backend.store.clone(), Arc::new(SystemClock), config)
        .await
        .context("cannot start the domain service (keys, revocations)")?;
    Ok(Arc::new(core))
}

/// HTTP settings from the validated configuration.
pub fn http_config(settings: &Settings) -> HttpConfig {
    HttpConfig {
        cookie: settings.cookie.clone(),
        origins: settings.origins.clone(),
        admin_token: settings.admin_token.clone(),
        introspection_secret: settings.introspection_secret.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        hsts: settings.tls.is_some(),
        request_timeout: None,
    }
}

/// `tessera migrate`.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let backend = open_store(settings).await?;
    backend.close().await;
    tracing::info!("store is up to date");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(
            redact("redis://:secret@cache:6379"),
            "redis://:***@cache:6379"
        );
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }
}
