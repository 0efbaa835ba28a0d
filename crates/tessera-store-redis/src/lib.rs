//! Tessera's Redis layer, for deployments of many nodes:
//!
//! - [`RedisLayer`] wraps the shared store with a hot cache of session
//!   lookups: one small key per session ([`cached_session`]), filled only
//!   where it is absent and rewritten in place when the session is used.
//!   Ending a session turns its key into a tombstone (an empty value) that
//!   outlives any fill still in flight, and neither a fill nor a rewrite
//!   replaces a tombstone, so an entry written by a racing reader can never
//!   bring a revoked session back.
//! - [`Redis::publish_revocation`] / [`Redis::subscribe_revocations`] fan
//!   revocations out by pub/sub, so every node rereads them at once.
//! - Counters ([`Redis::reserve`], [`Redis::hit`]) shared by every node
//!   (rate limits).
//!
//! Redis is an accelerator, never the source of truth: when it fails, reads
//! go to the store and counting carries on in the store's own counters;
//! cache use stays off until the cache has been flushed after Redis is back
//! (a deletion made while it was away left no tombstone), and counting
//! returns to Redis with it.

mod cached_session;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tessera_core::attempt::{Admission, Attempt, IN_FLIGHT_RETRY};
use tessera_core::audit::{AuditEvent, AuditRecord};
use tessera_core::authorization_code::{AuthorizationCode, CodeRedemption};
use tessera_core::consent::{ClientSession, Consent};
use tessera_core::keys::StoredKey;
use tessera_core::mfa::{MfaChallenge, MfaStatus, TotpFactor};
use tessera_core::oauth_client::OAuthClient;
use tessera_core::passkey::{Ceremony, PasskeyRecord};
use tessera_core::revocation::{Revocation, RevocationKind};
use tessera_core::secret::SecretHash;
use tessera_core::session::{Session, SessionId};
use tessera_core::store::{
    Audit, AuthorizationCodes, Ceremonies, Clients, Counters, Health, Keys, PasskeyCredentials,
    RefreshTokens, Revocations, Rotation, SecondFactors, Sessions, Store, StoreError, StoreResult,
    Users,
};
use tessera_core::user::{User, UserRecord};
use time::OffsetDateTime;
use tokio_stream::StreamExt as _;
use uuid::Uuid;

use crate::cached_session::Slot;

/// How long a session stays cached after it was filled or last rewritten:
/// longer than the longest touch interval (a minute), so a session in use
/// stays cached, each touch rewriting it for as long again. Every change to
/// a session rewrites or buries its entry, so the lifetime bounds memory,
/// not staleness.
const CACHE_TTL_SECONDS: u64 = 90;
/// How long a tombstone masks a session: far longer than a reader that read
/// the session before it ended can take to fill (a request gives up after
/// 30 s), and with fills and rewrites unable to replace it, nothing older
/// than the ending can be cached again.
const TOMBSTONE_TTL_SECONDS: u64 = 65;
/// Keys of the session cache, under the prefix: entries and tombstones.
const SESSION_KEYS: &str = "s:*";
/// Longest a Redis command may take before the node carries on without it.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// A connection to Redis, with a key prefix that isolates this deployment
/// (and each test).
pub struct Redis {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    /// Set when a command to Redis failed: the cache may hold entries whose
    /// tombstone is missing, so it is not trusted until flushed, and
    /// counters are kept in the store meanwhile.
    dirty: AtomicBool,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .field("dirty", &self.dirty.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// `raw` matched literally by a `SCAN MATCH` pattern.
fn glob_literal(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Redis {
    /// Connects to a `redis://` URL. Keys are prefixed with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Arc<Self>> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        Ok(Arc::new(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
            dirty: AtomicBool::new(false),
        }))
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{}", self.prefix, rest)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Succeeds when Redis answers. After an outage, flushes the session
    /// cache before it is trusted again. A failed ping counts as an outage,
    /// so requests stop waiting on Redis before one of them has to.
    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        if let Err(e) = pong {
            self.mark_dirty(&e);
            return Err(unavailable(e));
        }
        if self.dirty.load(Ordering::Acquire) {
            self.flush_cache().await?;
            self.dirty.store(false, Ordering::Release);
            tracing::info!("redis is back; session cache flushed, cache and counters in use again");
        }
        Ok(())
    }

    /// Whether cache entries may be trusted (and counters kept in Redis):
    /// false from a failure until [`Self::ping`] has flushed the cache.
    pub fn cache_usable(&self) -> bool {
        !self.dirty.load(Ordering::Acquire)
    }

    fn mark_dirty(&self, e: &dyn std::fmt::Display) {
        if !self.dirty.swap(true, Ordering::AcqRel) {
            tracing::warn!(error = %e, "redis failed; session cache off and counters in the store until it is back");
        }
    }

    /// Every key of the session cache (binary: hashes and ids are raw).
    async fn session_cache_keys(&self) -> StoreResult<Vec<Vec<u8>>> {
        let mut conn = self.conn();
        let pattern = format!("{}{SESSION_KEYS}", glob_literal(&self.prefix));
        let mut iter: redis::AsyncIter<Vec<u8>> =
            conn.scan_match(&pattern).await.map_err(unavailable)?;
        let mut keys = Vec::new();
        while let Some(key) = iter.next().await {
            keys.push(key.map_err(unavailable)?);
        }
        Ok(keys)
    }

    /// Drops every cached session, keeping the tombstones: those of recent
    /// endings still mask fills by readers that read before them.
    async fn flush_cache(&self) -> StoreResult<()> {
        let keys = self.session_cache_keys().await?;
        let mut conn = self.conn();
        for chunk in keys.chunks(500) {
            let mut invocation = DROP_ENTRIES.prepare_invoke();
            for key in chunk {
                invocation.key(key.as_slice());
            }
            let _: i64 = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Keys the session cache holds (entries and tombstones), for
    /// `tessera bench` and operators.
    pub async fn session_cache_key_count(&self) -> StoreResult<u64> {
        Ok(self.session_cache_keys().await?.len() as u64)
    }

    /// Bytes Redis has allocated (`used_memory` of `INFO memory`), for
    /// `tessera bench`: the whole server's, not this prefix's.
    pub async fn used_memory(&self) -> StoreResult<u64> {
        let mut conn = self.conn();
        let info: redis::InfoDict = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        info.get("used_memory")
            .ok_or_else(|| StoreError::Unavailable("redis: INFO has no used_memory".into()))
    }

    /// Tells every node that revocations were appended to the store.
    pub async fn publish_revocation(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        let _: i64 = conn
            .publish(self.key("revocations"), "1")
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Calls `on_revocation` on every announcement (and after each
    /// (re)connection, to catch up), until the task is aborted.
    pub fn subscribe_revocations<F>(
        self: &Arc<Self>,
        on_revocation: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn() + Send + Sync + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.listen_once(&on_revocation).await {
                    tracing::warn!(error = %e, "revocation subscription lost redis; retrying");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    }

    async fn listen_once<F: Fn()>(&self, on_revocation: &F) -> redis::RedisResult<()> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.key("revocations")).await?;
        on_revocation();
        let mut messages = pubsub.on_message();
        while messages.next().await.is_some() {
            on_revocation();
        }
        Ok(())
    }

    /// Counts one event under `key` in a fixed window of `window`; returns
    /// the count so far in the window and the seconds until it resets.
    pub async fn hit(&self, key: &str, window: Duration) -> StoreResult<(u64, u64)> {
        let mut conn = self.conn();
        let key = self.key(&format!("c:{key}"));
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let (count, ttl): (u64, i64) = redis::Script::new(
            "local n = redis.call('INCR', KEYS[1]) \
             if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
             return {n, redis.call('PTTL', KEYS[1])}",
        )
        .key(&key)
        .arg(millis)
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
        let ttl_ms = u64::try_from(ttl.max(0)).unwrap_or(0);
        Ok((count, ttl_ms.div_ceil(1000)))
    }

    /// The count under `key` in its current window.
    pub async fn count(&self, key: &str) -> StoreResult<u64> {
        let mut conn = self.conn();
        let value: Option<u64> = conn
            .get(self.key(&format!("c:{key}")))
            .await
            .map_err(unavailable)?;
        Ok(value.unwrap_or(0))
    }

    /// An attempt's keys in Redis, as [`RESERVE`] and [`RELEASE`] take
    /// them: the account's count and wait, then the address's.
    fn attempt_keys(&self, attempt: &Attempt<'_>) -> Vec<String> {
        let mut keys = vec![
            self.key(&format!("c:fail:{}", attempt.account)),
            self.key(&format!("c:block:{}", attempt.account)),
        ];
        if let Some(ip) = attempt.ip {
            keys.push(self.key(&format!("c:fail:{ip}")));
            keys.push(self.key(&format!("c:block:{ip}")));
        }
        keys
    }

    /// Admits `attempt` and counts it, or refuses it: the rules of
    /// `tessera_core::attempt` in one script, on Redis's own clock (`now`
    /// only turns its answer into a time).
    pub async fn reserve(
        &self,
        attempt: &Attempt<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Admission> {
        let mut conn = self.conn();
        let mut invocation = RESERVE.prepare_invoke();
        for key in self.attempt_keys(attempt) {
            invocation.key(key);
        }
        let answer: Vec<i64> = invocation
            .arg(attempt.limit)
            .arg(whole_millis(attempt.window))
            .arg(whole_millis(attempt.first_wait))
            .arg(whole_millis(attempt.max_wait))
            .arg(whole_millis(IN_FLIGHT_RETRY))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let count = |i: usize| answer.get(i).map_or(0, |n| u64::try_from(*n).unwrap_or(0));
        Ok(match answer.first() {
            Some(1) => Admission::Granted {
                ip: count(1),
                account: count(2),
            },
            _ => Admission::Refused {
                retry_at: after(now, count(1)),
            },
        })
    }

    /// Gives an admitted attempt's slot back on each key; after a success,
    /// forgets the account's count and wait.
    pub async fn release(&self, attempt: &Attempt<'_>, succeeded: bool) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut invocation = RELEASE.prepare_invoke();
        // The address's block is not the script's business.
        for key in self.attempt_keys(attempt).into_iter().take(3) {
            invocation.key(key);
        }
        let _: i64 = invocation
            .arg(i64::from(succeeded))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Blocks `key` for `duration` unless it is already blocked for longer,
    /// and forgets its count.
    pub async fn block(&self, key: &str, duration: Duration) -> StoreResult<()> {
        let mut conn = self.conn();
        let millis = u64::try_from(duration.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let _: i64 = BLOCK
            .key(self.key(&format!("c:block:{key}")))
            .key(self.key(&format!("c:fail:{key}")))
            .arg(millis)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Forgets the count under `key`.
    pub async fn reset(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let _: () = conn
            .del(self.key(&format!("c:{key}")))
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The shared store with a Redis session cache in front.
pub struct RedisLayer {
    inner: Arc<dyn Store>,
    redis: Arc<Redis>,
}

impl std::fmt::Debug for RedisLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLayer")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisLayer {
    /// Layers the cache over `inner`.
    pub fn new(inner: Arc<dyn Store>, redis: Arc<Redis>) -> Self {
        Self { inner, redis }
    }

    /// The Redis connection.
    pub fn redis(&self) -> &Arc<Redis> {
        &self.redis
    }

    fn key(&self, slot: &Slot) -> Vec<u8> {
        slot.key(&self.redis.prefix)
    }

    /// What the cache holds for `slot`.
    async fn cached(&self, slot: &Slot) -> Cached {
        if !self.redis.cache_usable() {
            return Cached::Unusable;
        }
        let mut conn = self.redis.conn();
        let value: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
            .arg(self.key(slot))
            .query_async(&mut conn)
            .await;
        match value {
            Ok(None) => Cached::Absent,
            // A tombstone, or a value this node cannot read (another
            // version's): the store answers, and neither is replaced.
            Ok(Some(value)) => match cached_session::decode(slot, &value) {
                Some(session) => Cached::Hit(session),
                None => Cached::Unusable,
            },
            Err(e) => {
                self.redis.mark_dirty(&e);
                Cached::Unusable
            }
        }
    }

    /// Caches `found`, the store's answer for a lookup by `slot`, unless
    /// the slot holds something already or `found` is not of the kind the
    /// slot holds (a cookie session looked up by id: only its secret finds
    /// it in the cache).
    async fn fill_if_absent(&self, slot: &Slot, found: Option<&Session>) {
        let Some(session) = found else { return };
        if !self.redis.cache_usable() || Slot::of(session).as_ref() != Some(slot) {
            return;
        }
        let Some(value) = cached_session::encode(session) else {
            return;
        };
        let mut conn = self.redis.conn();
        // NX: never over a tombstone (the session ended since it was read)
        // or an entry written since.
        let done: redis::RedisResult<()> = redis::cmd("SET")
            .arg(self.key(slot))
            .arg(value)
            .arg("EX")
            .arg(CACHE_TTL_SECONDS)
            .arg("NX")
            .query_async(&mut conn)
            .await;
        if let Err(e) = done {
            self.redis.mark_dirty(&e);
        }
    }

    /// Rewrites the cached copy of `session` (used, or its refresh token
    /// rotated) if one is cached, and keeps it another [`CACHE_TTL_SECONDS`];
    /// a tombstone or an absent entry stays as it is.
    async fn rewrite(&self, session: &Session) {
        let (Some(slot), Some(value)) = (Slot::of(session), cached_session::encode(session)) else {
            return;
        };
        let mut conn = self.redis.conn();
        let done: redis::RedisResult<i64> = REWRITE
            .key(self.key(&slot))
            .arg(value)
            .arg(CACHE_TTL_SECONDS)
            .invoke_async(&mut conn)
            .await;
        if let Err(e) = done {
            self.redis.mark_dirty(&e);
        }
    }

    /// Turns the cache keys of these ended sessions into tombstones.
    async fn bury(&self, sessions: &[Session]) {
        let slots: Vec<Slot> = sessions.iter().filter_map(Slot::of).collect();
        if slots.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for slot in &slots {
            pipe.cmd("SET")
                .arg(self.key(slot))
                .arg("")
                .arg("EX")
                .arg(TOMBSTONE_TTL_SECONDS)
                .ignore();
        }
        let mut conn = self.redis.conn();
        let done: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        if let Err(e) = done {
            self.redis.mark_dirty(&e);
        }
    }

    /// The session cached in `slot`, else the store's answer (`from_store`,
    /// run only then), cached if it may be.
    async fn session_in(
        &self,
        slot: Slot,
        from_store: impl Future<Output = StoreResult<Option<Session>>>,
    ) -> StoreResult<Option<Session>> {
        let fill = match self.cached(&slot).await {
            Cached::Hit(session) => return Ok(Some(session)),
            Cached::Absent => true,
            Cached::Unusable => false,
        };
        let found = from_store.await?;
        if fill {
            self.fill_if_absent(&slot, found.as_ref()).await;
        }
        Ok(found)
    }
}

/// What the session cache holds for a lookup.
enum Cached {
    /// A session.
    Hit(Session),
    /// Nothing: the store answers, and its answer may be cached.
    Absent,
    /// Nothing the cache can use (a tombstone, a value it cannot read, or
    /// Redis is not usable): the store answers, and nothing is cached.
    Unusable,
}

#[async_trait]
impl Users for RedisLayer {
    async fn insert_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        self.inner.insert_user(user, password_hash).await
    }
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        self.inner.user_by_id(id).await
    }
    async fn user_by_username(&self, normalized: &str) -> StoreResult<Option<UserRecord>> {
        self.inner.user_by_username(normalized).await
    }
    async fn list_users(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<User>> {
        self.inner.list_users(after, limit).await
    }
    async fn set_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.set_password_hash(id, hash, now).await
    }
    async fn set_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.set_disabled(id, disabled, now).await
    }
    async fn set_roles(
        &self,
        id: Uuid,
        roles: &[String],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.set_roles(id, roles, now).await
    }
}

#[async_trait]
impl Sessions for RedisLayer {
    async fn insert_session(
        &self,
        session: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        self.inner
            .insert_session(session, event, password_hash)
            .await
    }

    async fn session_by_secret(&self, hash: &SecretHash) -> StoreResult<Option<Session>> {
        self.session_in(Slot::Cookie(*hash), self.inner.session_by_secret(hash))
            .await
    }

    async fn session_by_id(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        match Slot::token(id) {
            Some(slot) => self.session_in(slot, self.inner.session_by_id(id)).await,
            None => self.inner.session_by_id(id).await,
        }
    }

    async fn stored_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        self.inner.stored_session(id).await
    }

    async fn touch_session(&self, session: &Session) -> StoreResult<()> {
        self.inner.touch_session(session).await?;
        self.rewrite(session).await;
        Ok(())
    }

    async fn delete_session(&self, id: &SessionId) -> StoreResult<Option<Session>> {
        let deleted = self.inner.delete_session(id).await?;
        self.bury(deleted.as_slice()).await;
        Ok(deleted)
    }

    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<&SessionId>,
    ) -> StoreResult<Vec<Session>> {
        let deleted = self.inner.delete_user_sessions(user_id, except).await?;
        self.bury(&deleted).await;
        Ok(deleted)
    }

    async fn list_user_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>> {
        self.inner.list_user_sessions(user_id, now).await
    }

    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64> {
        // Cached copies of these are expired too, and refused as such.
        self.inner.delete_expired_sessions(now).await
    }
}

#[async_trait]
impl RefreshTokens for RedisLayer {
    async fn insert_token_session(
        &self,
        session: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool> {
        self.inner
            .insert_token_session(session, event, password_hash)
            .await
    }

    async fn rotate_refresh(
        &self,
        presented: &SecretHash,
        new: &SecretHash,
        by: Option<Uuid>,
        now: OffsetDateTime,
        grace: time::Duration,
        idle_ttl: time::Duration,
    ) -> StoreResult<Rotation> {
        let outcome = self
            .inner
            .rotate_refresh(presented, new, by, now, grace, idle_ttl)
            .await?;
        // A token session is cached by id alone, with its current refresh
        // token's hash and times: rewritten in place, or buried with it.
        match &outcome {
            Rotation::Rotated(session, ..) => self.rewrite(session).await,
            Rotation::Reused(session) => self.bury(std::slice::from_ref(session)).await,
            Rotation::Expired | Rotation::Unknown | Rotation::WrongClient(_) => {}
        }
        Ok(outcome)
    }

    async fn session_by_refresh(&self, hash: &SecretHash) -> StoreResult<Option<(Session, bool)>> {
        self.inner.session_by_refresh(hash).await
    }

    async fn prune_refresh_tokens(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.inner.prune_refresh_tokens(before).await
    }
}

#[async_trait]
impl Keys for RedisLayer {
    async fn keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.inner.keys().await
    }
    async fn ensure_current_key(&self, candidate: &StoredKey) -> StoreResult<()> {
        self.inner.ensure_current_key(candidate).await
    }
    async fn rotate_key(
        &self,
        new: &StoredKey,
        now: OffsetDateTime,
        retired_expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.inner.rotate_key(new, now, retired_expires_at).await
    }
    async fn replace_sealed_key(&self, kid: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        self.inner.replace_sealed_key(kid, old, new).await
    }
    async fn delete_expired_keys(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.inner.delete_expired_keys(now).await
    }
}

#[async_trait]
impl Revocations for RedisLayer {
    async fn insert_revocations(
        &self,
        entries: &[(RevocationKind, String, OffsetDateTime)],
    ) -> StoreResult<Vec<Revocation>> {
        let stored = self.inner.insert_revocations(entries).await?;
        // The store has them; the announcement only makes other nodes look
        // now rather than at their next periodic read.
        if let Err(e) = self.redis.publish_revocation().await {
            tracing::warn!(error = %e, "revocation announcement failed; nodes will read it on their next sync");
        }
        Ok(stored)
    }
    async fn revocations_since(
        &self,
        after: i64,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<Revocation>> {
        self.inner.revocations_since(after, now, limit).await
    }
    async fn delete_expired_revocations(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.inner.delete_expired_revocations(now).await
    }
}

// OAuth clients, consents and codes are not cached: they pass through to
// the store below (sessions a client holds end through `Sessions`, which
// buries their cached copies).
#[async_trait]
impl Clients for RedisLayer {
    async fn insert_client(&self, client: &OAuthClient) -> StoreResult<()> {
        self.inner.insert_client(client).await
    }
    async fn client_by_id(&self, id: Uuid) -> StoreResult<Option<OAuthClient>> {
        self.inner.client_by_id(id).await
    }
    async fn list_clients(&self) -> StoreResult<Vec<OAuthClient>> {
        self.inner.list_clients().await
    }
    async fn delete_client(&self, id: Uuid) -> StoreResult<Option<Vec<SessionId>>> {
        self.inner.delete_client(id).await
    }
    async fn put_consent(&self, consent: &Consent) -> StoreResult<()> {
        self.inner.put_consent(consent).await
    }
    async fn consent(&self, user_id: Uuid, client_id: Uuid) -> StoreResult<Option<Consent>> {
        self.inner.consent(user_id, client_id).await
    }
    async fn list_consents(&self, user_id: Uuid) -> StoreResult<Vec<Consent>> {
        self.inner.list_consents(user_id).await
    }
    async fn delete_consent(
        &self,
        user_id: Uuid,
        client_id: Uuid,
    ) -> StoreResult<Option<Vec<SessionId>>> {
        self.inner.delete_consent(user_id, client_id).await
    }
    async fn link_client_session(
        &self,
        session_id: &SessionId,
        client_id: Uuid,
        scope: &str,
    ) -> StoreResult<()> {
        self.inner
            .link_client_session(session_id, client_id, scope)
            .await
    }
    async fn session_client(&self, session_id: &SessionId) -> StoreResult<Option<(Uuid, String)>> {
        self.inner.session_client(session_id).await
    }
    async fn client_sessions_of_user(&self, user_id: Uuid) -> StoreResult<Vec<ClientSession>> {
        self.inner.client_sessions_of_user(user_id).await
    }
}

#[async_trait]
impl AuthorizationCodes for RedisLayer {
    async fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()> {
        self.inner.insert_code(code).await
    }
    async fn redeem_code(
        &self,
        hash: &SecretHash,
        now: OffsetDateTime,
    ) -> StoreResult<CodeRedemption> {
        self.inner.redeem_code(hash, now).await
    }
    async fn set_code_session(
        &self,
        hash: &SecretHash,
        session_id: &SessionId,
    ) -> StoreResult<bool> {
        self.inner.set_code_session(hash, session_id).await
    }
    async fn delete_expired_codes(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.inner.delete_expired_codes(before).await
    }
}

#[async_trait]
impl PasskeyCredentials for RedisLayer {
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
        self.inner.insert_passkey(passkey).await
    }
    async fn user_passkeys(&self, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        self.inner.user_passkeys(user_id).await
    }
    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<PasskeyRecord>> {
        self.inner.passkey_by_credential_id(credential_id).await
    }
    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool> {
        self.inner.rename_passkey(user_id, id, name).await
    }
    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool> {
        self.inner.delete_passkey(user_id, id).await
    }
    async fn delete_user_passkeys(&self, user_id: Uuid) -> StoreResult<u64> {
        self.inner.delete_user_passkeys(user_id).await
    }
    async fn record_passkey_use(
        &self,
        id: Uuid,
        credential: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner.record_passkey_use(id, credential, now).await
    }
}

#[async_trait]
impl Ceremonies for RedisLayer {
    async fn insert_ceremony(&self, ceremony: &Ceremony) -> StoreResult<()> {
        self.inner.insert_ceremony(ceremony).await
    }
    async fn take_ceremony(&self, id: Uuid) -> StoreResult<Option<Ceremony>> {
        self.inner.take_ceremony(id).await
    }
    async fn delete_expired_ceremonies(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.inner.delete_expired_ceremonies(now).await
    }
}

/// Second factors are read and spent in the store below: nothing of
/// them is cached (a spent code must be spent on every node at once).
#[async_trait]
impl SecondFactors for RedisLayer {
    async fn put_pending_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner
            .put_pending_totp(user_id, sealed_secret, now)
            .await
    }
    async fn totp_factor(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>> {
        self.inner.totp_factor(user_id).await
    }
    async fn enable_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        step: i64,
        codes: &[SecretHash],
        event: &AuditEvent,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.inner
            .enable_totp(user_id, sealed_secret, step, codes, event, now)
            .await
    }
    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool> {
        self.inner.use_totp_step(user_id, step).await
    }
    async fn delete_totp(&self, user_id: Uuid) -> StoreResult<bool> {
        self.inner.delete_totp(user_id).await
    }
    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[SecretHash],
    ) -> StoreResult<bool> {
        self.inner.replace_recovery_codes(user_id, codes).await
    }
    async fn use_recovery_code(&self, user_id: Uuid, hash: &SecretHash) -> StoreResult<bool> {
        self.inner.use_recovery_code(user_id, hash).await
    }
    async fn mfa_status(&self, user_id: Uuid) -> StoreResult<MfaStatus> {
        self.inner.mfa_status(user_id).await
    }
    async fn insert_mfa_challenge(&self, challenge: &MfaChallenge) -> StoreResult<()> {
        self.inner.insert_mfa_challenge(challenge).await
    }
    async fn mfa_challenge(&self, hash: &SecretHash) -> StoreResult<Option<MfaChallenge>> {
        self.inner.mfa_challenge(hash).await
    }
    async fn delete_mfa_challenge(&self, hash: &SecretHash) -> StoreResult<bool> {
        self.inner.delete_mfa_challenge(hash).await
    }
    async fn delete_expired_mfa_challenges(&self, now: OffsetDateTime) -> StoreResult<u64> {
        self.inner.delete_expired_mfa_challenges(now).await
    }
    async fn mfa_statuses(&self, user_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, MfaStatus)>> {
        self.inner.mfa_statuses(user_ids).await
    }
    async fn sealed_totp_secrets(&self) -> StoreResult<Vec<(Uuid, Vec<u8>)>> {
        self.inner.sealed_totp_secrets().await
    }
    async fn replace_totp_secret(
        &self,
        user_id: Uuid,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        self.inner.replace_totp_secret(user_id, old, new).await
    }
}

/// Replaces a cached session's value (ARGV[1]) and keeps it ARGV[2]
/// seconds, only if KEYS[1] holds an entry: never over a tombstone (the
/// empty value), and nothing is created. 1 if it did.
static REWRITE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if held and #held > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
",
    )
});

/// Deletes the cache entries among KEYS, leaving tombstones; how many.
static DROP_ENTRIES: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local dropped = 0
for _, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if held and #held > 0 then
    redis.call('UNLINK', key)
    dropped = dropped + 1
  end
end
return dropped
",
    )
});

/// Admits an attempt ([`Redis::attempt_keys`]; ARGV: limit, window, first
/// wait, longest wait, in-flight retry, in milliseconds): `{1, address
/// count, account count}` when counted, `{0, milliseconds to wait}` when
/// refused, with nothing changed.
static RESERVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local limit = tonumber(ARGV[1])
local wait = redis.call('PTTL', KEYS[2])
if #KEYS == 4 then
  wait = math.max(wait, redis.call('PTTL', KEYS[4]))
  if tonumber(redis.call('GET', KEYS[3]) or '0') >= limit then
    wait = math.max(wait, tonumber(ARGV[5]))
  end
end
if wait > 0 then return {0, wait} end
local function count(key)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[2]) end
  return n
end
local ip = 0
if #KEYS == 4 then ip = count(KEYS[3]) end
local account = count(KEYS[1])
if account >= limit then
  local ms = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(account - limit, 20))
  redis.call('SET', KEYS[2], 1, 'PX', math.floor(ms))
end
return {1, ip, account}
",
    )
});

/// Gives an attempt's slots back (KEYS: account count, account wait,
/// address count; ARGV[1] = 1 after a success, which forgets the account's
/// count and wait).
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2])
elseif tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
if #KEYS == 3 and tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then
  redis.call('DECR', KEYS[3])
end
return 0
",
    )
});

/// Blocks KEYS[1] for ARGV[1] ms unless it is blocked for longer, and
/// forgets the count KEYS[2].
static BLOCK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], 1, 'PX', ARGV[1])
end
redis.call('DEL', KEYS[2])
return 0
",
    )
});

fn whole_millis(d: time::Duration) -> i64 {
    i64::try_from(d.whole_milliseconds()).unwrap_or(i64::MAX)
}

fn millis_of(d: time::Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.whole_milliseconds()).unwrap_or(0))
}

fn after(now: OffsetDateTime, millis: u64) -> OffsetDateTime {
    now + time::Duration::milliseconds(i64::try_from(millis).unwrap_or(i64::MAX))
}

impl RedisLayer {
    /// A counter operation on Redis while it is usable; else, or if it
    /// fails there, on the store (both are futures: only one runs).
    async fn counted<T>(
        &self,
        in_redis: impl Future<Output = StoreResult<T>>,
        in_store: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        if self.redis.cache_usable() {
            match in_redis.await {
                Ok(value) => return Ok(value),
                Err(e) => self.redis.mark_dirty(&e),
            }
        }
        in_store.await
    }
}

/// Counters live in Redis so every node shares them. When Redis fails they
/// are kept in the store below (shared by every node too) until Redis is
/// back and flushed: limits hold through an outage, and a store that cannot
/// be reached either refuses. Counts made on one side are not seen on the
/// other, so across a switch an address or account may get its limit once
/// more.
#[async_trait]
impl Counters for RedisLayer {
    async fn hit(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<(u64, OffsetDateTime)> {
        let in_redis = async {
            let (count, seconds_left) = self.redis.hit(key, millis_of(window)).await?;
            Ok((count, after(now, seconds_left * 1000)))
        };
        self.counted(in_redis, self.inner.hit(key, window, now))
            .await
    }
    async fn reserve(&self, attempt: &Attempt<'_>, now: OffsetDateTime) -> StoreResult<Admission> {
        self.counted(
            self.redis.reserve(attempt, now),
            self.inner.reserve(attempt, now),
        )
        .await
    }
    async fn release(
        &self,
        attempt: &Attempt<'_>,
        succeeded: bool,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        self.counted(
            self.redis.release(attempt, succeeded),
            self.inner.release(attempt, succeeded, now),
        )
        .await
    }
    async fn block(
        &self,
        key: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        self.counted(
            self.redis.block(key, millis_of(until - now)),
            self.inner.block(key, until, now),
        )
        .await
    }
    async fn delete_expired_counters(&self, now: OffsetDateTime) -> StoreResult<u64> {
        // Redis expires its own; the store's are those of outages.
        self.inner.delete_expired_counters(now).await
    }
}

#[async_trait]
impl Audit for RedisLayer {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.inner.append_audit(event).await
    }
    async fn list_audit(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        self.inner.list_audit(before, limit).await
    }
}

#[async_trait]
impl Health for RedisLayer {
    /// The store must answer; Redis need not (sessions, counters and
    /// revocations all work without it), so a lost Redis is reported by
    /// [`Health::degraded`] and does not take the node out of service.
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }

    async fn degraded(&self) -> Vec<&'static str> {
        match self.redis.ping().await {
            Ok(()) => Vec::new(),
            Err(_) => vec!["redis"],
        }
    }

    async fn session_storage_bytes(&self) -> StoreResult<Option<u64>> {
        self.inner.session_storage_bytes().await
    }
}

#[cfg(test)]
mod tests {
    //! The cache's writes racing an ending, step by step (the public
    //! lookups run a read and its fill back to back). Needs `TEST_REDIS_URL`.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use tessera_store_sqlite::SqliteStore;
    use tessera_store_tests::{session, sign_in_event, user};

    async fn layer() -> RedisLayer {
        let url = std::env::var("TEST_REDIS_URL").expect("TEST_REDIS_URL must be set");
        let dir = tempfile::tempdir().unwrap().keep();
        let store = SqliteStore::open(&dir.join("tessera.db")).await.unwrap();
        store.migrate().await.unwrap();
        let prefix = format!("test:{}:", Uuid::new_v4().simple());
        RedisLayer::new(
            Arc::new(store),
            Redis::connect(&url, &prefix).await.unwrap(),
        )
    }

    async fn raw_value(layer: &RedisLayer, slot: &Slot) -> Option<Vec<u8>> {
        let mut conn = layer.redis.conn();
        conn.get(layer.key(slot)).await.unwrap()
    }

    #[tokio::test]
    #[ignore = "needs Redis: scripts/test sets TEST_REDIS_URL"]
    async fn a_fill_or_rewrite_racing_an_ending_leaves_the_tombstone() {
        let layer = layer().await;
        let alice = user("alice");
        layer.insert_user(&alice, "h").await.unwrap();
        let (s, secret) = session(alice.id);
        layer
            .insert_session(&s, &sign_in_event(&s), "h")
            .await
            .unwrap();
        let slot = Slot::Cookie(secret.hash());
        // A reader finds nothing cached and reads the store...
        assert!(matches!(layer.cached(&slot).await, Cached::Absent));
        let read = layer.inner.session_by_secret(&secret.hash()).await.unwrap();
        assert!(read.is_some());
        // ...the session ends meanwhile...
        layer.delete_session(&s.id).await.unwrap();
        // ...then the reader fills, and a node that had it touches it.
        layer.fill_if_absent(&slot, read.as_ref()).await;
        layer.rewrite(&s).await;
        assert_eq!(raw_value(&layer, &slot).await, Some(Vec::new()));
        assert!(matches!(layer.cached(&slot).await, Cached::Unusable));
        assert_eq!(layer.session_by_secret(&secret.hash()).await.unwrap(), None);
        assert!(layer.redis.cache_usable(), "nothing failed");
    }

    #[tokio::test]
    #[ignore = "needs Redis: scripts/test sets TEST_REDIS_URL"]
    async fn a_late_fill_never_replaces_a_newer_entry() {
        let layer = layer().await;
        let alice = user("alice");
        layer.insert_user(&alice, "h").await.unwrap();
        let (s, secret) = session(alice.id);
        layer
            .insert_session(&s, &sign_in_event(&s), "h")
            .await
            .unwrap();
        let slot = Slot::Cookie(secret.hash());
        let read = layer.inner.session_by_secret(&secret.hash()).await.unwrap();
        let touched = Session {
            last_seen_at: s.last_seen_at + time::Duration::minutes(1),
            ..s.clone()
        };
        layer.session_by_secret(&secret.hash()).await.unwrap();
        layer.touch_session(&touched).await.unwrap();
        layer.fill_if_absent(&slot, read.as_ref()).await;
        match layer.cached(&slot).await {
            Cached::Hit(cached) => assert_eq!(cached.last_seen_at, touched.last_seen_at),
            _ => panic!("the touched session is cached"),
        }
    }
}
