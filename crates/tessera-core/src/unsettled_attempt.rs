//! A reserved password attempt whose outcome is not recorded yet.
//!
//! The request holding it can be dropped at any await: the client goes
//! away during the Argon2 wait, or the request times out. A slot reserved
//! then would stay counted until the window ends, so ten closed tabs would
//! lock an address out. Dropped unsettled, the attempt gives its slots back
//! in the background, as an attempt that was never checked does.

use std::sync::Arc;

use crate::context::Context;
use crate::rate_limit::AttemptKeys;

/// Gives back the slots of an attempt whose password was never checked
/// (the hashing pool was busy, the store failed, the request was dropped).
/// A failure to do so only leaves the slot counted, the cautious side.
pub(crate) async fn give_back(context: &Context, keys: &AttemptKeys) {
    let attempt = keys.attempt(context.config().rate_limit);
    if let Err(e) = context
        .store()
        .release(&attempt, false, context.now())
        .await
    {
        tracing::warn!(error = %e, "cannot give back an unchecked password attempt");
    }
}

/// An admitted attempt: [`UnsettledAttempt::settled`] once its outcome is
/// recorded; dropped before that, its slots are given back.
#[derive(Debug)]
pub(crate) struct UnsettledAttempt {
    context: Arc<Context>,
    keys: Option<AttemptKeys>,
}

impl UnsettledAttempt {
    pub(crate) fn new(context: Arc<Context>, keys: &AttemptKeys) -> Self {
        Self {
            context,
            keys: Some(keys.clone()),
        }
    }

    /// The outcome is recorded (or deliberately kept counted).
    pub(crate) fn settled(mut self) {
        self.keys = None;
    }
}

impl Drop for UnsettledAttempt {
    fn drop(&mut self) {
        let Some(keys) = self.keys.take() else {
            return;
        };
        // No runtime means the process is ending: nothing left to protect.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let context = Arc::clone(&self.context);
        runtime.spawn(async move { give_back(&context, &keys).await });
    }
}
