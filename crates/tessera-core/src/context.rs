//! [`Context`]: what every service shares — the store, the clock, the
//! settings, the hashing pool, the in-process session cache, the metrics —
//! and the helpers they all need: the audit write (and its log line) and the
//! live-user lookup.
//!
//! Services hold it by `Arc` and reach it by one pointer; it knows none of
//! them.

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditKind};
use crate::client::ClientInfo;
use crate::clock::Clock;
use crate::config::TesseraConfig;
use crate::error::CoreError;
use crate::metered_store::MeteredStore;
use crate::metrics::Metrics;
use crate::password::PasswordHasher;
use crate::session_cache::SessionCache;
use crate::store::Store;
use crate::user::User;

/// The pieces every service shares.
pub struct Context {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: TesseraConfig,
    hasher: PasswordHasher,
    cache: SessionCache,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The shared pieces over `store` (timed, into a registry of its own);
    /// starts the hashing pool.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: TesseraConfig,
    ) -> Result<Self, CoreError> {
        let metrics = Metrics::new();
        let hasher = PasswordHasher::new(config.hash_cost, config.hash_workers, config.hash_queue)?
            .with_wait_histogram(metrics.hash_wait());
        Ok(Self {
            store: Arc::new(MeteredStore::new(store, metrics.clone())),
            clock,
            config,
            hasher,
            cache: SessionCache::new(),
            metrics,
        })
    }

    /// This server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// This server's metrics, to hold (the HTTP layer records requests).
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The current time by the injected clock, to the millisecond: the
    /// precision every store keeps, so what is answered is what is stored.
    pub fn now(&self) -> OffsetDateTime {
        let now = self.clock.now();
        now.replace_millisecond(now.millisecond()).unwrap_or(now)
    }

    /// [`Self::now`] in milliseconds since the Unix epoch.
    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The injected clock, unrounded.
    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The settings in force.
    pub fn config(&self) -> &TesseraConfig {
        &self.config
    }

    /// What the in-process session cache holds now (operators, metrics).
    pub fn session_cache_stats(&self) -> crate::SessionCacheStats {
        self.cache.stats()
    }

    /// The store.
    pub(crate) fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The hashing pool (Argon2id on its own threads).
    pub(crate) fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// This node's cache of live sessions and their users.
    pub(crate) fn cache(&self) -> &SessionCache {
        &self.cache
    }

    /// The user `user_id` if they exist and are enabled: from the cache,
    /// else from the store (and then cached).
    pub(crate) async fn live_user(&self, user_id: Uuid) -> Result<Arc<User>, CoreError> {
        self.live_user_at(user_id, Instant::now()).await
    }

    /// [`Self::live_user`], the cache's freshness judged at `at` (a caller
    /// that has read the clock already).
    pub(crate) async fn live_user_at(
        &self,
        user_id: Uuid,
        at: Instant,
    ) -> Result<Arc<User>, CoreError> {
        if let Some(user) = self.cached_user(user_id, at) {
            return Ok(user);
        }
        match self.store.user_by_id(user_id).await? {
            Some(record) if !record.user.disabled => {
                let user = Arc::new(record.user);
                self.cache.put_user(user.clone());
                Ok(user)
            }
            _ => Err(CoreError::Unauthenticated),
        }
    }

    /// The user `user_id` if the cache holds it, fresh at `at` and enabled
    /// (`None`: ask [`Self::live_user_at`]).
    pub(crate) fn cached_user(&self, user_id: Uuid, at: Instant) -> Option<Arc<User>> {
        self.cache.user(user_id, at).filter(|user| !user.disabled)
    }

    /// Appends an event to the audit log, dated now.
    pub(crate) async fn audit(
        &self,
        kind: AuditKind,
        user_id: Option<Uuid>,
        client: &ClientInfo,
        detail: serde_json::Value,
    ) -> Result<(), CoreError> {
        let event = AuditEvent::new(kind, user_id, client, self.now(), detail);
        self.store.append_audit(&event).await?;
        event.log();
        Ok(())
    }
}
