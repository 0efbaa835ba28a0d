//! Turning settings into running parts: logging, the store, the domain service.

use std::sync::Arc;

use anyhow::Context as _;
use tessera_core::clock::SystemClock;
use tessera_core::{Tessera, TesseraConfig};
use tessera_http::HttpConfig;
use tessera_store_sqlite::SqliteStore;

use crate::config::{Database, Settings};

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

/// Opens the configured store, creating the data directory (owner-only) and
/// applying migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<SqliteStore>> {
    match &settings.database {
        Database::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dir(dir)?;
            }
            let store = SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot open the SQLite store at {}", path.display()))?;
            store.migrate().await.context("cannot migrate the store")?;
            Ok(Arc::new(store))
        }
    }
}

/// Creates `dir` if needed, readable by the owner only: it holds the
/// database and, later, private keys.
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

/// The domain service over `store`, with its keys and revocations loaded.
pub async fn domain(settings: &Settings, store: Arc<SqliteStore>) -> anyhow::Result<Arc<Tessera>> {
    let workers = settings.hash_workers;
    let config = TesseraConfig {
        session: settings.session,
        hash_cost: settings.hash_cost,
        hash_workers: workers,
        hash_queue: workers * 32,
        tokens: settings.tokens.clone(),
        algorithm: settings.algorithm,
    };
    let core = Tessera::open(store, Arc::new(SystemClock), config)
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
    }
}

/// `tessera migrate`.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    store.close().await;
    tracing::info!("store is up to date");
    Ok(())
}
