//! Bytes per session: in the store, from the store's own accounting; in the
//! server's in-process cache, from resident memory; and in Redis's session
//! cache, from Redis's own accounting.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use tessera_core::Tessera;
use tessera_core::audit::{AuditEvent, AuditKind};
use tessera_core::client::ClientInfo;
use tessera_core::secret::{Secret, SecretKind};
use tessera_core::session::{Session, SessionId, SessionKind};
use tessera_core::store::Store;
use tessera_core::user::UserRecord;
use tessera_store_redis::Redis;

use crate::populate::USER_AGENT;

/// Store growth per cookie session, from the store's own accounting, after
/// storing `sessions` sessions of `username`; answers their secrets too.
pub(crate) async fn store_bytes_per_session(
    store: &Arc<dyn Store>,
    core: &Tessera,
    username: &str,
    sessions: usize,
) -> anyhow::Result<(Option<f64>, Vec<Secret>)> {
    let Some(UserRecord {
        user,
        password_hash,
    }) = store.user_by_username(username).await?
    else {
        bail!("user {username} missing");
    };
    let before = store.session_storage_bytes().await?;
    let now = core.context.now();
    let mut secrets = Vec::with_capacity(sessions);
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
            amr: tessera_core::auth_methods::AuthMethods::PASSWORD,
            ip: Some("203.0.113.10".parse().context("ip")?),
            user_agent: Some(USER_AGENT.into()),
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
        secrets.push(secret);
    }
    let after = store.session_storage_bytes().await?;
    let bytes = match (before, after) {
        (Some(b), Some(a)) if sessions > 0 => Some(a.saturating_sub(b) as f64 / sessions as f64),
        _ => None,
    };
    Ok((bytes, secrets))
}

/// Sessions authenticating at once while the caches fill with Redis in
/// front: enough that 20,000 lookups through PostgreSQL and Redis take well
/// under Redis's cache lifetime (90 s), so none expires before it is
/// counted. Without Redis one at a time: parallel lookups would each grow
/// another pooled SQLite connection's page cache, counted as the cache's.
const REDIS_LOOKUP_TASKS: usize = 8;

/// Resident memory growth per session the server's cache takes in while
/// `secrets` (sessions in the store, not yet cached) authenticate, and the
/// cache's own per-session estimate.
pub(crate) async fn cache_bytes_per_session(
    core: &Arc<Tessera>,
    secrets: &Arc<Vec<Secret>>,
    redis: bool,
) -> anyhow::Result<(f64, usize)> {
    let held = core.context.session_cache_stats().sessions;
    let before = resident_bytes();
    let mut tasks = tokio::task::JoinSet::new();
    let lookup_tasks = if redis { REDIS_LOOKUP_TASKS } else { 1 };
    let share = secrets.len().div_ceil(lookup_tasks).max(1);
    for task in 0..lookup_tasks {
        let (core, secrets) = (core.clone(), secrets.clone());
        tasks.spawn(async move {
            for secret in secrets.iter().skip(task * share).take(share) {
                core.cookie_sessions
                    .authenticate(secret)
                    .await
                    .context("a stored session did not authenticate")?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a lookup task failed")??;
    }
    let after = resident_bytes();
    let stats = core.context.session_cache_stats();
    let added = stats.sessions.saturating_sub(held);
    let grown = after.saturating_sub(before) as f64 / added.max(1) as f64;
    let estimate = stats.session_bytes / stats.sessions.max(1);
    Ok((grown, estimate))
}

/// What Redis holds: bytes allocated (the whole server's) and keys of this
/// deployment's session cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RedisHolds {
    used_memory: u64,
    keys: u64,
}

impl RedisHolds {
    /// What `redis` holds now.
    pub(crate) async fn now(redis: &Redis) -> anyhow::Result<Self> {
        Ok(Self {
            used_memory: redis.used_memory().await?,
            keys: redis.session_cache_key_count().await?,
        })
    }

    /// Redis's growth from `before` to `self` per session cached in
    /// between (`sessions` of them): bytes, and session-cache keys.
    pub(crate) fn per_session(self, before: Self, sessions: usize) -> (f64, f64) {
        let n = sessions.max(1) as f64;
        (
            self.used_memory.saturating_sub(before.used_memory) as f64 / n,
            self.keys.saturating_sub(before.keys) as f64 / n,
        )
    }
}

/// Resident memory of this process.
pub(crate) fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}
