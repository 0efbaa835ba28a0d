//! [`Sweeper`]: removes what has expired from the store and from this
//! node's revocation set (run periodically by the server).

use std::sync::Arc;

use crate::context::Context;
use crate::error::CoreError;
use crate::revocations::Revocations;

/// The sweep of expired rows.
#[derive(Debug)]
pub struct Sweeper {
    context: Arc<Context>,
    revocations: Arc<Revocations>,
}

impl Sweeper {
    /// Sweeps `context`'s store and `revocations`.
    pub fn new(context: Arc<Context>, revocations: Arc<Revocations>) -> Self {
        Self {
            context,
            revocations,
        }
    }

    /// Removes expired sessions, refresh tokens replaced longer ago than a
    /// refresh token can live, expired revocations, keys and passkey ceremonies; returns how
    /// many sessions went.
    pub async fn sweep_expired(&self) -> Result<u64, CoreError> {
        let store = self.context.store();
        let now = self.context.now();
        let sessions = store.delete_expired_sessions(now).await?;
        store.delete_expired_counters(now).await?;
        store
            .prune_refresh_tokens(now - self.context.config().tokens.refresh_idle_ttl)
            .await?;
        store.delete_expired_revocations(now).await?;
        store.delete_expired_keys(now).await?;
        // Spent codes are kept a while past expiry, so a late second use is
        // still recognised as reuse (and revokes what the first issued).
        store
            .delete_expired_codes(now - time::Duration::minutes(10))
            .await?;
        store.delete_expired_ceremonies(now).await?;
        store.delete_expired_mfa_challenges(now).await?;
        self.revocations.set().prune(now);
        Ok(sessions)
    }
}
