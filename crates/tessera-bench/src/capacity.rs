//! What the Argon2id parameters allow on this machine: password
//! verifications per second with every hashing worker busy and nothing else
//! to do, the ceiling of sign-in throughput.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tessera_core::TesseraConfig;
use tessera_core::password::PasswordHasher;
use zeroize::Zeroizing;

/// A hashing pool like the server's (same cost, workers and queue), idle
/// but for the measurements: the server's own pool is idle in between too.
#[derive(Clone)]
pub(crate) struct Argon2Capacity {
    hasher: PasswordHasher,
}

impl Argon2Capacity {
    /// A pool the size of the one `config` gives the server.
    pub(crate) fn like(config: &TesseraConfig) -> anyhow::Result<Self> {
        let hasher = PasswordHasher::new(config.hash_cost, config.hash_workers, config.hash_queue)
            .context("cannot start a hashing pool")?;
        Ok(Self { hasher })
    }

    /// Verifications per second the pool completes in `window` with
    /// `in_flight` checks (of the dummy hash, as for an unknown user)
    /// always waiting.
    pub(crate) async fn measure(&self, window: Duration, in_flight: usize) -> anyhow::Result<f64> {
        let started = Instant::now();
        let until = started + window;
        let loops: Vec<_> = (0..in_flight.max(1))
            .map(|_| {
                let hasher = self.hasher.clone();
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < until {
                        hasher.verify(Zeroizing::new("x".into()), None).await?;
                        done += 1;
                    }
                    anyhow::Ok(done)
                })
            })
            .collect();
        let mut done = 0u64;
        for check in loops {
            done += check.await.context("hashing task")??;
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(if seconds > 0.0 {
            done as f64 / seconds
        } else {
            0.0
        })
    }
}
