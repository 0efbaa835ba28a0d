//! A bounded cache of access tokens whose signature and claims have already
//! been verified, keyed by SHA-256 of the token, so a token presented again
//! costs a hash instead of a signature check. Entries go at `exp` and all of
//! them when the key set changes. Revocation is not cached: it is checked on
//! every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::jwt::AccessClaims;
use crate::secret::sha256;

/// Most tokens held; past it, expired ones go, then all.
const CAPACITY: usize = 100_000;

/// Verified tokens by digest.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    entries: RwLock<HashMap<[u8; 32], Arc<AccessClaims>>>,
}

fn digest(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

impl VerifiedTokens {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The claims of `token` if it was verified before and has not expired
    /// at `now` (Unix seconds, leeway included by the caller).
    pub fn get(&self, token: &str, now: i64) -> Option<Arc<AccessClaims>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(&digest(token)).filter(|c| c.exp > now).cloned()
    }

    /// Remembers a verified token.
    pub fn put(&self, token: &str, claims: Arc<AccessClaims>, now: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, c| c.exp > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(digest(token), claims);
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
