//! The figures `tessera bench` reports: one row per scenario and the
//! measures around them. Their field names are the `--json` output.

use std::time::Duration;

use serde::Serialize;

use crate::first_sight::FirstSight;
use crate::latency::Latencies;
use crate::load::Run;

/// One measured scenario.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) per_second: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    /// Throughput relative to the unauthenticated endpoint of the same server,
    /// measured in alternating half-second windows.
    pub(crate) ratio_to_ceiling: Option<f64>,
}

impl Row {
    /// A row from the answers' latencies over `elapsed`, with no ratio yet.
    pub(crate) fn new(
        scenario: String,
        latencies: &Latencies,
        errors: u64,
        elapsed: Duration,
    ) -> Self {
        Self {
            scenario,
            requests: latencies.count(),
            errors,
            per_second: latencies.count() as f64 / elapsed.as_secs_f64(),
            p50_us: latencies.percentile(0.50),
            p99_us: latencies.percentile(0.99),
            ratio_to_ceiling: None,
        }
    }

    /// A row from one stretch of load.
    pub(crate) fn of(scenario: String, run: &Run) -> Self {
        Self::new(scenario, &run.latencies, run.errors, run.elapsed)
    }
}

/// Everything one `tessera bench` measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) machine: String,
    pub(crate) store: String,
    pub(crate) duration_s: u64,
    pub(crate) connections: usize,
    pub(crate) rows: Vec<Row>,
    /// p99 of `/v1/me` (cookie) paced at half its maximum rate.
    pub(crate) me_p99_at_half_load_us: u64,
    pub(crate) me_p99_idle_us: u64,
    pub(crate) me_p99_during_sign_in_saturation_us: u64,
    pub(crate) argon2_capacity_per_second: f64,
    pub(crate) sign_in_to_argon2_capacity: f64,
    pub(crate) store_bytes_per_session: Option<f64>,
    pub(crate) cache_bytes_per_session: f64,
    pub(crate) cache_bytes_per_session_estimate: usize,
    /// With Redis: growth of its `used_memory` per session its cache took
    /// in, and keys per session (none without Redis).
    pub(crate) redis_bytes_per_session: Option<f64>,
    pub(crate) redis_keys_per_session: Option<f64>,
    pub(crate) revocation_refused_after_us: u64,
    /// Sign-in with far more clients than the hashing pool can serve.
    pub(crate) sign_in_overload: Vec<Overload>,
    /// Bearer tokens never seen before, and the verified-token cache.
    pub(crate) first_sight: FirstSight,
}

/// One sign-in overload case.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Overload {
    pub(crate) clients: usize,
    /// How clients retry a 503: `"at once"` (the attack) or `"after Retry-After"`.
    pub(crate) retry: &'static str,
    /// Goodput: successful sign-ins per second.
    pub(crate) sign_ins_per_second: f64,
    /// Goodput against the Argon2id capacity measured just before and after.
    pub(crate) goodput_to_argon2_capacity: f64,
    pub(crate) argon2_capacity_per_second: f64,
    /// 503 answers per second, and how many of them lacked `Retry-After`.
    pub(crate) busy_per_second: f64,
    pub(crate) busy_without_retry_after: u64,
    /// Answers that were neither a session nor a 503 (should be none).
    pub(crate) errors: u64,
    /// `GET /v1/me` (cookie, paced at 200/s) p99 during the overload, alone
    /// in the windows between, and their ratio.
    pub(crate) me_p99_us: u64,
    pub(crate) me_p99_idle_us: u64,
    pub(crate) me_p99_to_idle: f64,
}

/// Cores and CPU model of this machine.
pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}
