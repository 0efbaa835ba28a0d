//! The options of `tessera bench`.

use clap::Args;

/// Options of `tessera bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Seconds of load per scenario.
    #[arg(long, default_value_t = 5)]
    pub(crate) duration: u64,
    /// Concurrent connections per scenario.
    #[arg(long, default_value_t = 16)]
    pub(crate) connections: usize,
    /// Bench this store instead of a fresh embedded one (`postgres://…`).
    #[arg(long)]
    pub(crate) database_url: Option<String>,
    /// Add Redis in front of the store.
    #[arg(long)]
    pub(crate) redis_url: Option<String>,
    /// Sessions created to measure bytes per session.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) sessions: usize,
    /// Fill a store with this many sessions (over a tenth as many users)
    /// and measure what depends on its size, against a store holding only
    /// the sessions requested, instead of the usual scenarios.
    #[arg(long, value_name = "N")]
    pub(crate) populate: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// In the sign-in overload cases, wait as long as `Retry-After` says
    /// before retrying a 503 (a polite client); by default clients retry at
    /// once, as an attacker does.
    #[arg(long)]
    pub(crate) honour_retry_after: bool,
}
