//! A bounded cache of tokens whose signature and claims have already been
//! verified, keyed by SHA-256 of the token, so a token presented again
//! costs a hash instead of a signature check. Entries go at `exp`, and all
//! of them when the key set changes. Revocation is never cached: it is
//! checked on every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;

use crate::claims::Claims;

/// Tokens held by default; past the capacity, expired ones go, then all.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Verified tokens by digest.
#[derive(Debug)]
pub struct VerifiedCache {
    entries: RwLock<HashMap<[u8; 32], Arc<Claims>>>,
    capacity: usize,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

fn key(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

impl VerifiedCache {
    /// An empty cache holding at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The claims of `token` if it was verified before and is not past its
    /// `exp` at `now` (Unix seconds; the caller adds its leeway).
    pub fn get(&self, token: &str, now: i64) -> Option<Arc<Claims>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(&key(token)).filter(|c| c.exp > now).cloned()
    }

    /// Remembers a verified token.
    pub fn put(&self, token: &str, claims: Arc<Claims>, now: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, c| c.exp > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key(token), claims);
    }

    /// Forgets everything (the key set changed).
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
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
        })
    }

    #[test]
    fn entries_expire_and_capacity_is_kept() {
        let cache = VerifiedCache::new(2);
        cache.put("a", claims(10), 0);
        assert!(cache.get("a", 9).is_some());
        assert!(cache.get("a", 10).is_none(), "expired at exp");
        cache.put("b", claims(5), 0);
        cache.put("c", claims(100), 6);
        assert_eq!(cache.len(), 2, "the expired one made room");
        cache.put("d", claims(100), 6);
        assert!(cache.len() <= 2);
        cache.clear();
        assert!(cache.is_empty());
    }
}
