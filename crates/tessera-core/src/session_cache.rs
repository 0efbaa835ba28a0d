//! The in-process cache of live sessions and their users, so that a signed-in
//! request costs no store round trip.
//!
//! Only positive answers come from the cache, and each is checked against the
//! revocation set, which every node keeps current: a session ended on any
//! node is refused here on the next request. Entries are compact (no IP or
//! user agent) and live [`ENTRY_TTL`], after which the store is asked again.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::compact_session::CompactSession;
use crate::secret::SecretHash;
use crate::session::{Session, SessionId, SessionKind};
use crate::user::User;

/// How long an entry is trusted before the store is asked again.
pub const ENTRY_TTL: Duration = Duration::from_secs(30);
/// Most sessions (per kind) and users held; past it, stale entries go, then all.
const CAPACITY: usize = 1_000_000;
/// Length of a session id's text (the token table's key).
const ID_LEN: usize = 22;

/// One cached session and when it was filled. The secret hash is the key
/// of the cookie table, so entries do not repeat it.
#[derive(Clone, Copy)]
struct Entry {
    session: CompactSession,
    /// Seconds since the cache's epoch when the entry was filled.
    filled_at: u32,
}

/// When a table value was filled, for eviction.
trait Filled {
    fn filled_at(&self) -> u32;
}

impl Filled for Entry {
    fn filled_at(&self) -> u32 {
        self.filled_at
    }
}

impl Filled for (Entry, SecretHash) {
    fn filled_at(&self) -> u32 {
        self.0.filled_at
    }
}

/// The tables: keyed by digests and server-made ids, which no client
/// chooses, so a fast seeded hash serves (std's SipHash cost more than the
/// rest of a lookup).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Cached sessions (cookie ones by secret hash, token ones by id) and users.
pub struct SessionCache {
    epoch: Instant,
    cookies: RwLock<Map<SecretHash, Entry>>,
    /// Token sessions by id, with their refresh token's hash.
    tokens: RwLock<Map<[u8; ID_LEN], (Entry, SecretHash)>>,
    users: RwLock<Map<Uuid, (Arc<User>, u32)>>,
}

/// What the in-process session cache holds: for operators (metrics) and
/// `tessera bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCacheStats {
    /// Sessions held, both kinds.
    pub sessions: usize,
    /// Users held.
    pub users: usize,
    /// Approximate bytes the sessions take, by layout at the tables' worst
    /// load (users are shared with requests and not counted).
    pub session_bytes: usize,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("sessions", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl SessionCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            cookies: RwLock::default(),
            tokens: RwLock::default(),
            users: RwLock::default(),
        }
    }

    fn tick(&self) -> u32 {
        self.tick_at(Instant::now())
    }

    fn tick_at(&self, at: Instant) -> u32 {
        u32::try_from(at.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    /// Whether an entry filled at `filled_at` is still trusted at `at`.
    fn fresh(&self, filled_at: u32, at: Instant) -> bool {
        u64::from(self.tick_at(at).saturating_sub(filled_at)) < ENTRY_TTL.as_secs()
    }

    /// A cached cookie session by secret hash, if the entry is fresh at
    /// `at` and the session live at `now_ms` (Unix milliseconds, the
    /// precision its times are kept in: compared as numbers, with no
    /// calendar).
    pub fn cookie(&self, hash: &SecretHash, now_ms: i64, at: Instant) -> Option<CompactSession> {
        let entry = *read(&self.cookies).get(hash)?;
        (entry.session.is_live_at(now_ms) && self.fresh(entry.filled_at, at))
            .then_some(entry.session)
    }

    /// Claims the writing down of a cookie session's use: the cached entry
    /// keyed by `hash` is marked seen at `now_ms` if it still says
    /// `seen_ms`, and the answer is whether this caller did it. Of the
    /// requests that find a use due at the same moment, one writes it and
    /// the others go on as if it were written (it is, a moment later; if
    /// that write fails, the next is due an interval on).
    pub fn claim_touch(&self, hash: &SecretHash, seen_ms: i64, now_ms: i64) -> bool {
        let mut map = write(&self.cookies);
        match map.get_mut(hash) {
            Some(entry) if entry.session.last_seen_at_ms() == seen_ms => {
                entry.session.mark_seen_at(now_ms);
                true
            }
            _ => false,
        }
    }

    /// A cached token session by id, if fresh, with its refresh token's hash.
    pub fn token(&self, id: &SessionId) -> Option<(CompactSession, SecretHash)> {
        let key: [u8; ID_LEN] = id.as_str().as_bytes().try_into().ok()?;
        let (entry, secret_hash) = *read(&self.tokens).get(&key)?;
        self.fresh(entry.filled_at, Instant::now())
            .then_some((entry.session, secret_hash))
    }

    /// Caches `session` (just read from the store, or just touched).
    pub fn put(&self, session: &Session) {
        let Some(cached) = CompactSession::new(session) else {
            return;
        };
        let entry = Entry {
            session: cached,
            filled_at: self.tick(),
        };
        match session.kind {
            SessionKind::Cookie => self.insert(&self.cookies, session.secret_hash, entry),
            SessionKind::Token => {
                // Keyed by the id's text, which a bearer request has at hand.
                if let Ok(key) = <[u8; ID_LEN]>::try_from(session.id.as_str().as_bytes()) {
                    self.insert(&self.tokens, key, (entry, session.secret_hash));
                }
            }
        }
    }

    fn insert<K: std::hash::Hash + Eq, V: Filled>(
        &self,
        map: &RwLock<Map<K, V>>,
        key: K,
        entry: V,
    ) {
        let mut map = write(map);
        if map.len() >= CAPACITY {
            let now = self.tick();
            map.retain(|_, e| u64::from(now.saturating_sub(e.filled_at())) < ENTRY_TTL.as_secs());
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key, entry);
    }

    /// Forgets `session` (ended, or its secret replaced).
    pub fn remove(&self, session: &Session) {
        match session.kind {
            SessionKind::Cookie => self.remove_cookie(&session.secret_hash),
            SessionKind::Token => {
                if let Ok(key) = <[u8; ID_LEN]>::try_from(session.id.as_str().as_bytes()) {
                    write(&self.tokens).remove(&key);
                }
            }
        }
    }

    /// Forgets the cookie session whose secret hash is `hash`.
    pub fn remove_cookie(&self, hash: &SecretHash) {
        write(&self.cookies).remove(hash);
    }

    /// A cached user, if fresh at `at`.
    pub fn user(&self, id: Uuid, at: Instant) -> Option<Arc<User>> {
        let (user, filled_at) = read(&self.users).get(&id).cloned()?;
        self.fresh(filled_at, at).then_some(user)
    }

    /// Caches a user just read from the store.
    pub fn put_user(&self, user: Arc<User>) {
        let mut users = write(&self.users);
        if users.len() >= CAPACITY {
            users.clear();
        }
        users.insert(user.id, (user, self.tick()));
    }

    /// Forgets a user whose account changed.
    pub fn remove_user(&self, id: Uuid) {
        write(&self.users).remove(&id);
    }

    /// Sessions held, both kinds.
    pub fn len(&self) -> usize {
        read(&self.cookies).len() + read(&self.tokens).len()
    }

    /// What is held now.
    pub fn stats(&self) -> SessionCacheStats {
        let sessions = self.len();
        SessionCacheStats {
            sessions,
            users: read(&self.users).len(),
            session_bytes: sessions * Self::bytes_per_session(),
        }
    }

    /// Bytes one cached session takes in its table: key and entry, plus the
    /// table's control byte, at the table's worst load (half full after growth).
    pub fn bytes_per_session() -> usize {
        let slot = std::mem::size_of::<(SecretHash, Entry)>()
            .max(std::mem::size_of::<([u8; ID_LEN], (Entry, SecretHash))>())
            + 1;
        slot * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::to_millis;

    #[test]
    fn round_trips_what_authentication_needs() {
        let cache = SessionCache::new();
        let cookie = Session::sample(SessionKind::Cookie);
        let token = Session::sample(SessionKind::Token);
        let now_ms = to_millis(cookie.created_at);
        cache.put(&cookie);
        cache.put(&token);
        let back = cache
            .cookie(&cookie.secret_hash, now_ms, Instant::now())
            .map(|c| c.session(SessionKind::Cookie, cookie.secret_hash));
        assert_eq!(
            back,
            Some(Session {
                ip: None,
                user_agent: None,
                ..cookie.clone()
            })
        );
        assert_eq!(
            cache
                .token(&token.id)
                .map(|(s, hash)| s.session(SessionKind::Token, hash)),
            Some(Session {
                ip: None,
                user_agent: None,
                ..token.clone()
            })
        );
        assert!(
            cache
                .cookie(&token.secret_hash, now_ms, Instant::now())
                .is_none(),
            "kinds are apart"
        );
        assert!(cache.token(&cookie.id).is_none());
        cache.remove(&cookie);
        assert!(
            cache
                .cookie(&cookie.secret_hash, now_ms, Instant::now())
                .is_none()
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_cookie_session_is_answered_only_while_live() {
        // Each end of a session's life is CompactSession's own test; here,
        // that the cache asks it.
        let cache = SessionCache::new();
        let cookie = Session::sample(SessionKind::Cookie);
        cache.put(&cookie);
        let end = to_millis(cookie.expires_at());
        let at = |now_ms| cache.cookie(&cookie.secret_hash, now_ms, Instant::now());
        assert!(at(end - 1).is_some());
        assert!(at(end).is_none());
    }

    #[test]
    fn stats_count_what_is_held() {
        let cache = SessionCache::new();
        cache.put(&Session::sample(SessionKind::Cookie));
        cache.put(&Session::sample(SessionKind::Token));
        let stats = cache.stats();
        assert_eq!(stats.sessions, 2);
        assert_eq!(stats.users, 0);
        assert_eq!(stats.session_bytes, 2 * SessionCache::bytes_per_session());
    }

    #[test]
    fn a_session_costs_well_under_400_bytes() {
        let per_session = SessionCache::bytes_per_session();
        assert!(per_session <= 400, "{per_session} bytes");
    }
}
