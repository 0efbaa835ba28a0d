//! Turning settings into running parts: the store (embedded, or
//! PostgreSQL with optional Redis), the domain service, the fan-out.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use secrecy::ExposeSecret as _;
use tessera_core::clock::SystemClock;
use tessera_core::key_wrap::KeyEncryptionKey;
use tessera_core::revocations::Revocations;
use tessera_core::store::Store;
use tessera_core::{Tessera, TesseraConfig};
use tessera_http::{ForwardAuthConfig, HttpConfig};
use tessera_store_postgres::PgStore;
use tessera_store_redis::{Redis, RedisLayer};
use tessera_store_sqlite::SqliteStore;
use tokio::task::JoinHandle;

use crate::config::redact::url as redact;
use crate::config::{Database, Settings};
use crate::data_dir;

/// Connections per node to PostgreSQL.
const POSTGRES_POOL: u32 = 16;
/// Without a push from another node, the store is read this often for
/// revocations anyway: well within a second.
const REVOCATION_SYNC_INTERVAL: Duration = Duration::from_millis(250);
/// Access tokens are refused (503) when the revocation set could not be
/// refreshed for this long.
pub const REVOCATION_MAX_STALENESS: Duration = Duration::from_secs(2);

/// The opened store and the concrete parts behind it.
pub struct Backend {
    /// What the domain uses.
    pub store: Arc<dyn Store>,
    sqlite: Option<Arc<SqliteStore>>,
    postgres: Option<Arc<PgStore>>,
    redis: Option<Arc<Redis>>,
    /// Held while the embedded store is open: no restore meanwhile.
    _lock: Option<data_dir::StoreLock>,
}

impl Backend {
    /// A line for the log saying where data lives.
    pub fn describe(&self, settings: &Settings) -> String {
        let store = match &settings.database {
            Database::Sqlite(path) => format!("embedded SQLite store at {}", path.display()),
            Database::Postgres(url) => format!("PostgreSQL at {}", redact(url.expose_secret())),
        };
        match &settings.redis {
            Some((url, prefix)) => format!(
                "{store}, Redis at {} (prefix {prefix})",
                redact(url.expose_secret())
            ),
            None => store,
        }
    }

    /// The Redis connection, when Redis is configured.
    pub fn redis(&self) -> Option<&Arc<Redis>> {
        self.redis.as_ref()
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

    /// Keeps `revocations` current: on every push from another
    /// node (Redis pub/sub, else PostgreSQL NOTIFY) and at least four times
    /// a second from the store, so a lost push costs at most that delay.
    /// With Redis, also pings it so the cache is flushed after an outage,
    /// and sets `redis_up` (`tessera_redis_up`) to what the ping found.
    pub fn start_revocation_sync(
        &self,
        revocations: Arc<Revocations>,
        redis_up: metrics::Gauge,
    ) -> Vec<JoinHandle<()>> {
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
                    let up = redis.ping().await.is_ok();
                    redis_up.set(if up { 1.0 } else { 0.0 });
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
                match revocations.sync().await {
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

/// Opens the configured store, creating the embedded store's directory
/// (owner-only; one that other users can reach is refused) and applying
/// migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Backend> {
    let (store, sqlite, postgres, lock): (Arc<dyn Store>, _, _, _) = match &settings.database {
        Database::Sqlite(path) => {
            data_dir::ensure_private_dir(&data_dir::of_database(path))?;
            let lock = data_dir::StoreLock::shared(path)?;
            // Files left more open by an earlier version are closed before use.
            data_dir::restrict_database_files(path)?;
            let store = SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot open the SQLite store at {}", path.display()))?;
            store.migrate().await.context("cannot migrate the store")?;
            data_dir::restrict_database_files(path)?;
            let store = Arc::new(store);
            (store.clone(), Some(store), None, Some(lock))
        }
        Database::Postgres(url) => {
            let url = url.expose_secret();
            let store = PgStore::connect(url, POSTGRES_POOL)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))?;
            store
                .migrate()
                .await
                .context("cannot migrate the PostgreSQL store")?;
            let store = Arc::new(store);
            (store.clone(), None, Some(store), None)
        }
    };
    let (store, redis): (Arc<dyn Store>, _) = match &settings.redis {
        None => (store, None),
        Some((url, prefix)) => {
            let url = url.expose_secret();
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
        _lock: lock,
    })
}

/// The key that seals the signing keys: the configured one; else, for the
/// embedded store, the one generated into the data directory. PostgreSQL
/// needs it configured: every node must hold the same key. `replace` lets
/// the embedded store generate a new one over sealed keys (re-wrapping).
pub async fn key_encryption_key(
    settings: &Settings,
    backend: &Backend,
    replace: bool,
) -> anyhow::Result<KeyEncryptionKey> {
    if let Some(kek) = &settings.key_encryption_key {
        return Ok(kek.clone());
    }
    match &settings.database {
        Database::Postgres(_) => bail!(
            "with PostgreSQL, key_encryption_key or key_encryption_key_file must be set \
             (TESSERA_KEY_ENCRYPTION_KEY or TESSERA_KEY_ENCRYPTION_KEY_FILE): the signing keys \
             in the shared database are encrypted with it, so every node must be given the \
             same key; make one with `openssl rand -base64 32`"
        ),
        Database::Sqlite(_) => {
            data_dir::key_encryption_key(&settings.data_dir, &*backend.store, replace).await
        }
    }
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
        hash_queue: workers * tessera_core::password::QUEUE_PER_WORKER,
        tokens: settings.tokens.clone(),
        algorithm: settings.algorithm,
        revocation_max_staleness: serving.then_some(REVOCATION_MAX_STALENESS),
        rate_limit: settings.rate_limit,
        password_grant: settings.password_grant,
    };
    let kek = key_encryption_key(settings, backend, false).await?;
    let core = Tessera::open(backend.store.clone(), Arc::new(SystemClock), config, kek)
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
        metrics_token: settings.metrics_token.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        hsts: settings.tls.is_some(),
        request_timeout: None,
        draining: Default::default(),
    }
}

/// Forward authentication's sign-in redirect (to `public_url`'s pages) and
/// allowed hosts.
pub fn forward_auth_config(settings: &Settings) -> ForwardAuthConfig {
    ForwardAuthConfig::new(&settings.public_url, settings.forward_auth_hosts.clone())
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
    use super::http_config;
    use crate::config::Settings;

    #[test]
    fn http_settings_print_no_secret() -> Result<(), crate::config::ConfigError> {
        let admin = "admin-token-that-is-never-printed-0123456789";
        let introspection = "introspection-secret-never-printed-0123456789";
        let settings = Settings::load(
            None,
            [
                ("TESSERA_ADMIN_TOKEN".to_owned(), admin.to_owned()),
                (
                    "TESSERA_INTROSPECTION_SECRET".to_owned(),
                    introspection.to_owned(),
                ),
            ],
        )?;
        let http = http_config(&settings);
        assert!(http.admin_token.is_some());
        let printed = format!("{http:?}");
        assert!(!printed.contains(admin), "{printed}");
        assert!(!printed.contains(introspection), "{printed}");
        Ok(())
    }
}
