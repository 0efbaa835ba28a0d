//! Latencies of answered requests, in microseconds, kept in an HDR histogram:
//! constant memory however long a run, and percentiles exact to three
//! significant figures.

use std::time::Duration;

use anyhow::anyhow;
use hdrhistogram::Histogram;

/// Longest latency told apart (a minute); longer ones count as a minute.
const HIGHEST_US: u64 = 60_000_000;
/// Significant figures kept: 1 µs resolution up to 2 ms, 0.1 % beyond.
const SIGNIFICANT_FIGURES: u8 = 3;

/// Latencies of one run (one connection, a scenario, or a set of windows).
#[derive(Clone)]
pub(crate) struct Latencies(Histogram<u64>);

impl Latencies {
    /// None yet.
    pub(crate) fn new() -> anyhow::Result<Self> {
        Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_FIGURES)
            .map(Self)
            .map_err(|e| anyhow!("latency histogram: {e:?}"))
    }

    /// Counts one answer that took `took`.
    pub(crate) fn record(&mut self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(us);
    }

    /// Adds `other`'s answers to these.
    pub(crate) fn add(&mut self, other: &Self) -> anyhow::Result<()> {
        self.0
            .add(&other.0)
            .map_err(|e| anyhow!("merging latencies: {e:?}"))
    }

    /// Answers counted.
    pub(crate) fn count(&self) -> u64 {
        self.0.len()
    }

    /// The latency (µs) that a share `quantile` of the answers did not
    /// exceed; 0 with no answers.
    pub(crate) fn percentile(&self, quantile: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        self.0.value_at_quantile(quantile)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percentiles_of_known_latencies() {
        let mut latencies = Latencies::new().unwrap();
        for us in 1..=1000 {
            latencies.record(Duration::from_micros(us));
        }
        assert_eq!(latencies.count(), 1000);
        assert_eq!(latencies.percentile(0.50), 500);
        assert_eq!(latencies.percentile(0.99), 990);
    }

    #[test]
    fn merged_runs_count_every_answer() {
        let mut a = Latencies::new().unwrap();
        let mut b = Latencies::new().unwrap();
        a.record(Duration::from_micros(100));
        b.record(Duration::from_micros(300));
        b.record(Duration::from_secs(3600));
        a.add(&b).unwrap();
        assert_eq!(a.count(), 3);
        assert!(
            a.percentile(1.0) >= HIGHEST_US,
            "an hour counts as a minute"
        );
    }

    #[test]
    fn no_answers_no_latency() {
        assert_eq!(Latencies::new().unwrap().percentile(0.99), 0);
    }
}
