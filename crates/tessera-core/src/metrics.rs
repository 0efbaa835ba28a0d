//! [`Metrics`]: this server's own Prometheus registry and the handles of
//! the domain's series, each recorded once, where its outcome is decided.
//!
//! Every [`crate::Tessera`] has its own registry (nothing is installed
//! process-wide), so servers started side by side in one process — tests,
//! `tessera bench` — never count each other's events. The series a hot path
//! touches are registered once, here, and recording one is an atomic add.
//! Series whose label values are only known later (the HTTP routes, the
//! store operations, the reasons a session ended) are registered through
//! [`Metrics::recorder`] from `&'static` or bounded values, never from
//! request data.

use std::sync::{Arc, Weak};
use std::time::Duration;

use ::metrics::{
    Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// Every series name starts with this.
pub const PREFIX: &str = "tessera_";

/// Bucket bounds (seconds) of every latency histogram: from a cached
/// request (tens of microseconds) to a hash that waited its whole deadline.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (a scrape does it too): bounds the memory the samples hold.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How a sign-in by password ended (`tessera_sign_ins_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    /// The password was right; a session follows.
    Ok,
    /// Unknown user or wrong password (one case, as the client sees it).
    WrongCredentials,
    /// Refused by the brute-force limits before any password work.
    Throttled,
    /// The right password of a disabled account.
    Disabled,
    /// The hashing queue was full (503).
    Busy,
    /// The password was right and a second factor is asked for.
    MfaRequired,
    /// A wrong second-factor code (or a spent one).
    WrongCode,
}

impl SignInOutcome {
    const ALL: [Self; 7] = [
        Self::Ok,
        Self::WrongCredentials,
        Self::Throttled,
        Self::Disabled,
        Self::Busy,
        Self::MfaRequired,
        Self::WrongCode,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::WrongCredentials => "wrong_credentials",
            Self::Throttled => "throttled",
            Self::Disabled => "disabled",
            Self::Busy => "busy",
            Self::MfaRequired => "mfa_required",
            Self::WrongCode => "wrong_code",
        }
    }
}

/// How a refresh-token exchange ended (`tessera_refreshes_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The current refresh token, exchanged.
    Ok,
    /// A just-replaced token presented again within the grace window: exchanged too.
    GraceReuse,
    /// A replaced token after the grace window: its session was revoked.
    ReuseDetected,
    /// Malformed, unknown or expired: refused.
    Invalid,
}

impl RefreshOutcome {
    const ALL: [Self; 4] = [
        Self::Ok,
        Self::GraceReuse,
        Self::ReuseDetected,
        Self::Invalid,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::GraceReuse => "grace_reuse",
            Self::ReuseDetected => "reuse_detected",
            Self::Invalid => "invalid",
        }
    }
}

/// Which in-process cache a lookup went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    /// Live sessions (`tessera_session_cache_lookups_total`).
    Session,
    /// Access tokens whose signature and claims were verified
    /// (`tessera_verified_token_cache_lookups_total`).
    VerifiedToken,
}

/// This server's registry and the domain's series.
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    sign_ins: [Counter; SignInOutcome::ALL.len()],
    refreshes: [Counter; RefreshOutcome::ALL.len()],
    sessions_created: [Counter; 2],
    /// Hits then misses, per [`CacheKind`].
    caches: [[Counter; 2]; 2],
    hash_wait: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Where the registry's series are described from (Prometheus ignores it).
fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()))
}

impl Metrics {
    /// A fresh registry with the domain's series registered (at zero, so
    /// rates are defined from the first scrape). Inside a Tokio runtime it
    /// also folds histogram samples every few seconds until dropped.
    pub fn new() -> Arc<Self> {
        // Histograms with buckets (not summaries): they add up across nodes.
        let recorder = match PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS) {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let recorder = Arc::new(recorder);
        let r = &*recorder;
        describe(
            r,
            Kind::Counter,
            "tessera_sign_ins_total",
            "Sign-ins by password, by outcome",
            None,
        );
        describe(
            r,
            Kind::Counter,
            "tessera_refreshes_total",
            "Refresh-token exchanges, by outcome",
            None,
        );
        describe(
            r,
            Kind::Counter,
            "tessera_sessions_created_total",
            "Sessions started, by kind",
            None,
        );
        describe(
            r,
            Kind::Counter,
            "tessera_revocations_total",
            "Session ids revoked, by reason",
            None,
        );
        describe(
            r,
            Kind::Counter,
            "tessera_session_cache_lookups_total",
            "Lookups in the in-process session cache, by result",
            None,
        );
        describe(
            r,
            Kind::Counter,
            "tessera_verified_token_cache_lookups_total",
            "Lookups in the verified-access-token cache, by result",
            None,
        );
        describe(
            r,
            Kind::Histogram,
            "tessera_password_hash_wait_seconds",
            "Time a password hash waited in the queue for a hashing thread",
            Some(Unit::Seconds),
        );
        describe(
            r,
            Kind::Gauge,
            "tessera_password_hash_queue_depth",
            "Password hashes waiting for a hashing thread",
            None,
        );
        describe(
            r,
            Kind::Gauge,
            "tessera_password_hashes_running",
            "Password hashes on a hashing thread now",
            None,
        );
        describe(
            r,
            Kind::Gauge,
            "tessera_revocation_set_size",
            "Entries in this node's revocation set",
            None,
        );
        describe(
            r,
            Kind::Gauge,
            "tessera_revocation_sync_age_seconds",
            "Seconds since the revocation set was last brought up to date from the store",
            Some(Unit::Seconds),
        );
        describe(
            r,
            Kind::Gauge,
            "tessera_session_cache_sessions",
            "Sessions held in the in-process session cache",
            None,
        );
        describe(
            r,
            Kind::Gauge,
            "tessera_verified_token_cache_tokens",
            "Access tokens held in the verified-token cache",
            None,
        );
        describe(
            r,
            Kind::Counter,
            "tessera_store_errors_total",
            "Store operations that failed, by operation and kind",
            None,
        );
        describe(
            r,
            Kind::Histogram,
            "tessera_store_operation_duration_seconds",
            "Store operations as the domain sees them (Redis and database together)",
            Some(Unit::Seconds),
        );
        let labelled = |name: &'static str, label: &'static str, value: &'static str| {
            r.register_counter(
                &Key::from_parts(name, vec![Label::from_static_parts(label, value)]),
                &metadata(),
            )
        };
        let sign_ins =
            SignInOutcome::ALL.map(|o| labelled("tessera_sign_ins_total", "outcome", o.as_str()));
        let refreshes =
            RefreshOutcome::ALL.map(|o| labelled("tessera_refreshes_total", "outcome", o.as_str()));
        let sessions_created =
            ["cookie", "token"].map(|k| labelled("tessera_sessions_created_total", "kind", k));
        let caches = [
            "tessera_session_cache_lookups_total",
            "tessera_verified_token_cache_lookups_total",
        ]
        .map(|name| ["hit", "miss"].map(|result| labelled(name, "result", result)));
        let hash_wait = r.register_histogram(
            &Key::from_static_name("tessera_password_hash_wait_seconds"),
            &metadata(),
        );
        let metrics = Arc::new(Self {
            sign_ins,
            refreshes,
            sessions_created,
            caches,
            hash_wait,
            recorder,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(upkeep(Arc::downgrade(&metrics.recorder)));
        }
        metrics
    }

    /// The registry, for series registered by other layers (HTTP requests).
    pub fn recorder(&self) -> &dyn Recorder {
        &*self.recorder
    }

    /// Everything in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    /// Counts a sign-in by password.
    pub fn sign_in(&self, outcome: SignInOutcome) {
        if let Some(c) = self.sign_ins.get(outcome as usize) {
            c.increment(1);
        }
    }

    /// Counts a refresh-token exchange.
    pub fn refresh(&self, outcome: RefreshOutcome) {
        if let Some(c) = self.refreshes.get(outcome as usize) {
            c.increment(1);
        }
    }

    /// Counts a session started.
    pub fn session_created(&self, kind: crate::session::SessionKind) {
        let index = match kind {
            crate::session::SessionKind::Cookie => 0,
            crate::session::SessionKind::Token => 1,
        };
        if let Some(c) = self.sessions_created.get(index) {
            c.increment(1);
        }
    }

    /// Counts `n` session ids revoked for `reason` (a fixed word of the code).
    pub fn revoked(&self, reason: &'static str, n: u64) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "tessera_revocations_total",
                    vec![Label::from_static_parts("reason", reason)],
                ),
                &metadata(),
            )
            .increment(n);
    }

    /// Counts a cache lookup.
    pub fn cache_lookup(&self, cache: CacheKind, hit: bool) {
        let counters = match cache {
            CacheKind::Session => self.caches.first(),
            CacheKind::VerifiedToken => self.caches.get(1),
        };
        if let Some(c) = counters.and_then(|c| c.get(usize::from(!hit))) {
            c.increment(1);
        }
    }

    /// The histogram of password hashes' time in the queue.
    pub fn hash_wait(&self) -> Histogram {
        self.hash_wait.clone()
    }

    /// `tessera_redis_up`: 1 while Redis answers, 0 while it is lost; set
    /// by whoever pings it (only a server configured with Redis has it).
    pub fn redis_availability(&self) -> Gauge {
        describe(
            self.recorder(),
            Kind::Gauge,
            "tessera_redis_up",
            "1 while Redis answers this node's pings, 0 while it is lost",
            None,
        );
        self.gauge("tessera_redis_up")
    }

    /// A gauge without labels, by name.
    pub fn gauge(&self, name: &'static str) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_static_name(name), &metadata())
    }

    /// The latency histogram and error counters of store operation `op`.
    pub(crate) fn store_operation(&self, op: &'static str) -> Histogram {
        self.recorder.register_histogram(
            &Key::from_parts(
                "tessera_store_operation_duration_seconds",
                vec![Label::from_static_parts("operation", op)],
            ),
            &metadata(),
        )
    }

    /// Counts a failed store operation `op` by the kind of failure.
    pub(crate) fn store_error(&self, op: &'static str, kind: &'static str) {
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "tessera_store_errors_total",
                    vec![
                        Label::from_static_parts("operation", op),
                        Label::from_static_parts("kind", kind),
                    ],
                ),
                &metadata(),
            )
            .increment(1);
    }
}

/// What a described series is.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution in buckets.
    Histogram,
}

/// Gives series `name` its `# HELP` line (and unit) in `recorder`.
pub fn describe(
    recorder: &dyn Recorder,
    kind: Kind,
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
) {
    let (name, help) = (name.into(), SharedString::const_str(help));
    match kind {
        Kind::Counter => recorder.describe_counter(name, unit, help),
        Kind::Gauge => recorder.describe_gauge(name, unit, help),
        Kind::Histogram => recorder.describe_histogram(name, unit, help),
    }
}

/// Folds histogram samples into buckets until the registry is dropped.
async fn upkeep(recorder: Weak<PrometheusRecorder>) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(recorder) = recorder.upgrade() else {
            return;
        };
        recorder.handle().run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_separate_and_series_start_at_zero() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.sign_in(SignInOutcome::Throttled);
        a.refresh(RefreshOutcome::GraceReuse);
        a.cache_lookup(CacheKind::VerifiedToken, false);
        let (a, b) = (a.render(), b.render());
        assert!(
            a.contains("tessera_sign_ins_total{outcome=\"throttled\"} 1"),
            "{a}"
        );
        assert!(
            a.contains("tessera_refreshes_total{outcome=\"grace_reuse\"} 1"),
            "{a}"
        );
        assert!(
            a.contains("tessera_verified_token_cache_lookups_total{result=\"miss\"} 1"),
            "{a}"
        );
        assert!(
            b.contains("tessera_sign_ins_total{outcome=\"throttled\"} 0"),
            "{b}"
        );
        assert!(
            b.contains("tessera_sign_ins_total{outcome=\"ok\"} 0"),
            "{b}"
        );
    }

    #[test]
    fn every_series_is_prefixed() {
        let m = Metrics::new();
        m.revoked("signed_out", 2);
        m.store_error("ping", "unavailable");
        m.gauge("tessera_revocation_set_size").set(3.0);
        for line in m.render().lines().filter(|l| !l.is_empty()) {
            let name = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .unwrap_or(line);
            assert!(name.starts_with(PREFIX), "{line}");
        }
    }
}
