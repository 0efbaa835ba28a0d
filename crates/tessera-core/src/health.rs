//! [`Health`]: whether this node can serve — the store answers and the
//! revocation set is current — and which optional parts are lost.

use std::sync::Arc;

use crate::context::Context;
use crate::error::CoreError;
use crate::revocations::Revocations;

/// Readiness of the domain.
#[derive(Debug)]
pub struct Health {
    context: Arc<Context>,
    revocations: Arc<Revocations>,
}

impl Health {
    /// Health of `context`'s store and of `revocations`.
    pub fn new(context: Arc<Context>, revocations: Arc<Revocations>) -> Self {
        Self {
            context,
            revocations,
        }
    }

    /// Succeeds when the store answers and the revocation set is current,
    /// naming the optional parts that are lost meanwhile.
    pub async fn ready(&self) -> Result<Vec<&'static str>, CoreError> {
        let store = self.context.store();
        store.ping().await?;
        self.revocations.fresh()?;
        Ok(store.degraded().await)
    }
}
