//! [`Scrape`]: what `/metrics` answers — the gauges that are read rather
//! than counted (hashing queue, revocation set, session and verified-token
//! caches) brought up to date, then every series of this server's registry
//! as Prometheus text.

use std::sync::Arc;

use crate::context::Context;
use crate::revocations::Revocations;
use crate::signing_keys::SigningKeys;

/// The state read at each scrape.
#[derive(Debug)]
pub struct Scrape {
    context: Arc<Context>,
    revocations: Arc<Revocations>,
    keys: Arc<SigningKeys>,
}

impl Scrape {
    /// Scrapes of `context`'s metrics, with `revocations`' state and the
    /// cache of `keys`.
    pub fn new(
        context: Arc<Context>,
        revocations: Arc<Revocations>,
        keys: Arc<SigningKeys>,
    ) -> Self {
        Self {
            context,
            revocations,
            keys,
        }
    }

    /// Every series now, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let metrics = self.context.metrics();
        let (waiting, running) = self.context.hasher().queue_depth();
        let (revoked, since_sync) = self.revocations.status();
        let cached = self.context.session_cache_stats().sessions;
        let (verified, _) = self.keys.verified_cache_size();
        for (name, value) in [
            ("tessera_password_hash_queue_depth", waiting as f64),
            ("tessera_password_hashes_running", running as f64),
            ("tessera_revocation_set_size", revoked as f64),
            (
                "tessera_revocation_sync_age_seconds",
                since_sync.as_secs_f64(),
            ),
            ("tessera_session_cache_sessions", cached as f64),
            ("tessera_verified_token_cache_tokens", verified as f64),
        ] {
            metrics.gauge(name).set(value);
        }
        metrics.render()
    }
}
