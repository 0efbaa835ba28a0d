//! A bounded cache of tokens whose signature and claims have already been
//! verified, keyed by SHA-256 of the token, so a token presented again
//! costs a hash instead of a signature check. Entries go at `exp`, and all
//! of them when the key set changes. Revocation is never cached: it is
//! checked on every request.
//!
//! Eviction keeps the tokens in use: two generations of at most half the
//! capacity each. New tokens go into the young one; when it is full it
//! becomes the old one and the previous old one is dropped whole. A token
//! found in the old generation moves back into the young one, so a token
//! presented at least once per half-capacity of new tokens is never
//! evicted, however many tokens are seen only once. Every operation is
//! O(1) (dropping a generation is amortised over the insertions that
//! filled it, and done outside the lock).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use aws_lc_rs::digest;

use crate::claims::Claims;

/// Tokens held by default, both generations together.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// The cache key of a token: SHA-256 of its bytes. Computed once per
/// request and used for both the lookup and, after a miss, the insertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of `token`.
    pub fn of(token: &str) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        Self(out)
    }
}

type Generation = HashMap<TokenKey, Arc<Claims>>;

#[derive(Debug, Default)]
struct Generations {
    young: Generation,
    old: Generation,
}

/// Verified tokens by digest.
#[derive(Debug)]
pub struct VerifiedCache {
    generations: RwLock<Generations>,
    /// Most entries in one generation: half the capacity.
    per_generation: usize,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl VerifiedCache {
    /// An empty cache holding at most `capacity` tokens (rounded down to
    /// an even number, and at least 2: one per generation).
    pub fn new(capacity: usize) -> Self {
        Self {
            generations: RwLock::new(Generations::default()),
            per_generation: (capacity / 2).max(1),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Generations> {
        self.generations.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Generations> {
        self.generations.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The claims of the token with `key` if it was verified before and is
    /// not past its `exp` at `now` (Unix seconds; the caller adds its
    /// leeway). A token found in the old generation moves to the young one.
    pub fn get(&self, key: &TokenKey, now: i64) -> Option<Arc<Claims>> {
        {
            let generations = self.read();
            if let Some(claims) = generations.young.get(key) {
                return (claims.exp > now).then(|| claims.clone());
            }
            if !generations.old.contains_key(key) {
                return None;
            }
        }
        let mut generations = self.write();
        let Some(claims) = generations.old.remove(key) else {
            // Another caller moved it meanwhile (or a generation went).
            return generations.young.get(key).filter(|c| c.exp > now).cloned();
        };
        if claims.exp <= now {
            return None;
        }
        let retired = self.insert(&mut generations, *key, claims.clone());
        drop(generations);
        drop(retired);
        Some(claims)
    }

    /// Remembers a verified token by its key.
    pub fn put(&self, key: TokenKey, claims: Arc<Claims>) {
        let mut generations = self.write();
        let retired = self.insert(&mut generations, key, claims);
        drop(generations);
        // Freed after the lock is released: other requests do not wait on it.
        drop(retired);
    }

    /// Inserts into the young generation, first turning a full one into
    /// the old one; answers the generation retired, for the caller to drop
    /// once the lock is released.
    fn insert(
        &self,
        generations: &mut Generations,
        key: TokenKey,
        claims: Arc<Claims>,
    ) -> Option<Generation> {
        let mut retired = None;
        if generations.young.len() >= self.per_generation && !generations.young.contains_key(&key) {
            let young = std::mem::replace(
                &mut generations.young,
                HashMap::with_capacity(self.per_generation),
            );
            retired = Some(std::mem::replace(&mut generations.old, young));
        }
        // The young generation holds the newest copy; never both.
        generations.old.remove(&key);
        generations.young.insert(key, claims);
        retired
    }

    /// Forgets everything (the key set changed).
    pub fn clear(&self) {
        let retired = std::mem::take(&mut *self.write());
        drop(retired);
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        let generations = self.read();
        generations.young.len() + generations.old.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most tokens held at once.
    pub fn capacity(&self) -> usize {
        self.per_generation * 2
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::large_enum_variant
    )]
    use super::*;

    fn claims(exp: i64) -> Arc<Claims> {
        Arc::new(Claims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            iat: 0,
            exp,
            jti: "j".into(),
            sid: "sid".into(),
            roles: vec![],
            nbf: None,
            client_id: None,
            scope: None,
            amr: Vec::new(),
        })
    }

    fn key(token: &str) -> TokenKey {
        TokenKey::of(token)
    }

    #[test]
    fn keys_are_sha256_of_the_token() {
        assert_eq!(key("a"), key("a"));
        assert_ne!(key("a"), key("b"));
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            key("abc").0[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "the digest, not some other hash"
        );
    }

    #[test]
    fn entries_expire_with_their_token() {
        let cache = VerifiedCache::new(10);
        cache.put(key("a"), claims(10));
        assert!(cache.get(&key("a"), 9).is_some());
        assert!(cache.get(&key("a"), 10).is_none(), "expired at exp");
        assert!(cache.get(&key("b"), 0).is_none(), "never put");
    }

    #[test]
    fn entries_expire_in_the_old_generation_too() {
        let cache = VerifiedCache::new(4);
        cache.put(key("a"), claims(10));
        cache.put(key("b"), claims(10));
        cache.put(key("c"), claims(100)); // "a" and "b" are now old
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&key("a"), 9).is_some(), "held until its exp");
        assert!(cache.get(&key("b"), 10).is_none(), "expired, even when old");
    }

    #[test]
    fn the_bound_is_never_exceeded() {
        for capacity in [2, 3, 10, 1000] {
            let cache = VerifiedCache::new(capacity);
            for i in 0..capacity * 10 {
                let token = format!("t{i}");
                cache.put(key(&token), claims(100));
                // Lookups of older tokens move them between generations:
                // they must not grow the cache either.
                if i % 3 == 0 {
                    let _ = cache.get(&key(&format!("t{}", i / 2)), 0);
                }
                assert!(cache.len() <= capacity, "{} > {capacity}", cache.len());
            }
        }
    }

    #[test]
    fn a_full_cache_holds_at_least_a_generation() {
        let cache = VerifiedCache::new(10);
        for i in 0..95 {
            cache.put(key(&format!("t{i}")), claims(100));
            if i >= 5 {
                assert!(cache.len() > 5, "{} after {i}", cache.len());
            }
        }
        // The newest tokens are the ones held.
        assert!(cache.get(&key("t94"), 0).is_some());
        assert!(cache.get(&key("t85"), 0).is_some());
        assert!(cache.get(&key("t84"), 0).is_none());
    }

    #[test]
    fn a_token_put_twice_is_held_once() {
        let cache = VerifiedCache::new(4);
        for _ in 0..10 {
            cache.put(key("a"), claims(100));
        }
        assert_eq!(cache.len(), 1);
        cache.put(key("b"), claims(100));
        cache.put(key("c"), claims(100)); // "a", "b" become old
        cache.put(key("a"), claims(200)); // back into the young one
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&key("a"), 0).map(|c| c.exp), Some(200));
    }

    #[test]
    fn a_hot_token_survives_a_flood_of_first_sight_tokens() {
        let capacity = 1000;
        let cache = VerifiedCache::new(capacity);
        let hot: Vec<String> = (0..10).map(|i| format!("hot{i}")).collect();
        for token in &hot {
            cache.put(key(token), claims(100));
        }
        // Ten times the capacity of tokens seen once, with a hot token
        // presented every tenth request: every one of those is a hit.
        for i in 0..capacity * 10 {
            cache.put(key(&format!("once{i}")), claims(100));
            if i % 10 == 0 {
                let token = &hot[(i / 10) % hot.len()];
                assert!(
                    cache.get(&key(token), 0).is_some(),
                    "{token} evicted after {i} first-sight tokens"
                );
            }
            assert!(cache.len() <= capacity);
        }
        assert!(
            cache.get(&key("once0"), 0).is_none(),
            "a token seen once goes"
        );
    }

    #[test]
    fn clear_forgets_both_generations() {
        let cache = VerifiedCache::new(4);
        for token in ["a", "b", "c"] {
            cache.put(key(token), claims(100));
        }
        assert_eq!(cache.len(), 3);
        cache.clear();
        assert!(cache.is_empty());
        for token in ["a", "b", "c"] {
            assert!(cache.get(&key(token), 0).is_none(), "{token} after clear");
        }
    }

    #[test]
    fn concurrent_use_keeps_the_bound() {
        let cache = Arc::new(VerifiedCache::new(64));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let token = format!("{t}-{i}");
                        cache.put(key(&token), claims(100));
                        let _ = cache.get(&key(&format!("{t}-{}", i / 2)), 0);
                        assert!(cache.len() <= 64);
                    }
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().is_ok());
        }
        assert!(cache.len() <= 64);
    }
}
