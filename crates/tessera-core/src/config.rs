//! [`TesseraConfig`]: the domain's settings, validated by the caller.

use crate::jwt::TokenPolicy;
use crate::keys::Algorithm;
use crate::password::{HashCost, QUEUE_PER_WORKER};
use crate::rate_limit::RateLimitPolicy;
use crate::session::SessionPolicy;

/// Domain settings, validated by the caller.
#[derive(Debug, Clone)]
pub struct TesseraConfig {
    /// Cookie session lifetimes.
    pub session: SessionPolicy,
    /// Argon2id cost.
    pub hash_cost: HashCost,
    /// Hashes run at once (normally the number of cores).
    pub hash_workers: usize,
    /// At most this many hashes wait for a worker (a bound on memory; the
    /// queue's deadline, `password::QUEUE_DEADLINE`, usually refuses first).
    pub hash_queue: usize,
    /// Access and refresh token settings.
    pub tokens: TokenPolicy,
    /// Algorithm of new signing keys.
    pub algorithm: Algorithm,
    /// When set, access tokens are refused (503) if the revocation set has
    /// not been brought up to date from the store for this long: a node cut
    /// off from the store could otherwise accept a revoked token.
    pub revocation_max_staleness: Option<std::time::Duration>,
    /// Brute-force limits on sign-in.
    pub rate_limit: RateLimitPolicy,
    /// Whether `/v1/token` accepts `grant_type=password` (first-party
    /// clients); the authorization-code flow is always on.
    pub password_grant: bool,
}

impl Default for TesseraConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            session: SessionPolicy::default(),
            hash_cost: HashCost::default(),
            hash_workers: cores,
            hash_queue: cores * QUEUE_PER_WORKER,
            tokens: TokenPolicy::new("http://127.0.0.1:8080"),
            algorithm: Algorithm::EdDSA,
            revocation_max_staleness: None,
            rate_limit: RateLimitPolicy::default(),
            password_grant: true,
        }
    }
}
