//! Sign-in under overload: far more clients than the hashing pool can
//! serve, retrying every 503 (at once, as an attack does, or as told), with
//! `/v1/me` paced alongside to see that the server stays responsive.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::capacity::Argon2Capacity;
use crate::client::Loader;
use crate::latency::Latencies;
use crate::load::{Work, build, drive};
use crate::progress::progress;
use crate::report::Overload;
use crate::scenarios::SIGN_IN_WINDOW;

/// Concurrent sign-in clients in the overload cases: a small attack, and one
/// far beyond any queue a core's worth of Argon2id drains in a second.
pub(crate) const OVERLOAD_CLIENTS: [usize; 2] = [64, 256];

/// How an overload client retries a 503.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Retry {
    /// At once: the attack.
    AtOnce,
    /// After the `Retry-After` the server asked for.
    AsTold,
}

/// Sign-ins, and 503s that carried no `Retry-After`, counted while the
/// overload is measured (not while the queue fills or drains).
#[derive(Default)]
struct OverloadCounts {
    measuring: AtomicBool,
    signed_in: AtomicU64,
    busy: AtomicU64,
    busy_without_retry_after: AtomicU64,
    errors: AtomicU64,
}

impl OverloadCounts {
    fn count(&self, counter: &AtomicU64) {
        if self.measuring.load(Relaxed) {
            counter.fetch_add(1, Relaxed);
        }
    }
}

/// Half a second for `clients` sign-in requests to arrive and the hashing
/// queue to reach its steady state before the overload is measured.
const OVERLOAD_RAMP: Duration = Duration::from_millis(500);

/// One measured stretch of overload. Short stretches alternate with the
/// references (the hashing pool alone, `/v1/me` alone): on a shared machine
/// the CPU left to this process changes within seconds.
const OVERLOAD_SEGMENT: Duration = Duration::from_secs(2);

/// `/v1/me` (cookie) paced at 200/s over 4 connections: light, so its p99 is
/// the server's responsiveness, not queueing behind the load generator.
const ME_PACE: Duration = Duration::from_millis(20);
const ME_CONNECTIONS: usize = 4;

/// `clients` connections signing in over and over, each retrying a 503 as
/// `retry` says, in rounds of: `/v1/me` alone for its idle p99, the hashing
/// pool alone for its capacity (with `in_flight` checks), then a segment of
/// overload with `/v1/me` paced alongside. The requests in flight finish
/// between rounds, so each reference sees an idle server.
pub(crate) async fn sign_in_overload(
    loader: &Loader,
    capacity: &Argon2Capacity,
    clients: usize,
    retry: Retry,
    in_flight: usize,
    duration: Duration,
    me: Work,
) -> anyhow::Result<Overload> {
    progress(&format!(
        "sign-in overload: {clients} clients retrying {}",
        retry_name(retry)
    ));
    let rounds = (duration.as_millis() / OVERLOAD_SEGMENT.as_millis()).max(1);
    let counts = Arc::new(OverloadCounts::default());
    let (mut idle, mut during) = (Latencies::new()?, Latencies::new()?);
    let (mut allowed, mut measured) = (0.0, Duration::ZERO);
    for _ in 0..rounds {
        let alone = drive(
            loader,
            me.clone(),
            ME_CONNECTIONS,
            SIGN_IN_WINDOW,
            Some(ME_PACE),
        )
        .await?;
        idle.add(&alone.latencies)?;
        allowed += capacity.measure(SIGN_IN_WINDOW, in_flight).await?;
        let until = Instant::now() + OVERLOAD_RAMP + OVERLOAD_SEGMENT;
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                tokio::spawn(overload_client(
                    loader.clone(),
                    counts.clone(),
                    until,
                    retry,
                ))
            })
            .collect();
        tokio::time::sleep(OVERLOAD_RAMP).await;
        counts.measuring.store(true, Relaxed);
        let started = Instant::now();
        let alongside = drive(
            loader,
            me.clone(),
            ME_CONNECTIONS,
            OVERLOAD_SEGMENT,
            Some(ME_PACE),
        )
        .await?;
        counts.measuring.store(false, Relaxed);
        measured += started.elapsed();
        during.add(&alongside.latencies)?;
        for task in tasks {
            task.await.context("overload client")??;
        }
    }
    let allowed = allowed / rounds as f64;
    let seconds = measured.as_secs_f64();
    let per_second = counts.signed_in.load(Relaxed) as f64 / seconds;
    let (me_p99_us, me_p99_idle_us) = (during.percentile(0.99), idle.percentile(0.99));
    Ok(Overload {
        clients,
        retry: retry_name(retry),
        sign_ins_per_second: per_second,
        goodput_to_argon2_capacity: if allowed > 0.0 {
            per_second / allowed
        } else {
            0.0
        },
        argon2_capacity_per_second: allowed,
        busy_per_second: counts.busy.load(Relaxed) as f64 / seconds,
        busy_without_retry_after: counts.busy_without_retry_after.load(Relaxed),
        errors: counts.errors.load(Relaxed),
        me_p99_us,
        me_p99_idle_us,
        me_p99_to_idle: me_p99_us as f64 / me_p99_idle_us.max(1) as f64,
    })
}

fn retry_name(retry: Retry) -> &'static str {
    match retry {
        Retry::AtOnce => "at once",
        Retry::AsTold => "after Retry-After",
    }
}

/// One client signing in over and over on one connection until `until`.
async fn overload_client(
    loader: Loader,
    counts: Arc<OverloadCounts>,
    until: Instant,
    retry: Retry,
) -> anyhow::Result<()> {
    let mut sender = loader.connect().await?;
    while Instant::now() < until {
        match loader.send(&mut sender, build(&Work::SignIn, "")?).await {
            Ok((200, _, _)) => counts.count(&counts.signed_in),
            Ok((503, headers, _)) => {
                counts.count(&counts.busy);
                let hint = headers
                    .get(hyper::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                match (retry, hint) {
                    (_, None) => counts.count(&counts.busy_without_retry_after),
                    (Retry::AsTold, Some(seconds)) => {
                        let wake = Instant::now() + Duration::from_secs(seconds);
                        tokio::time::sleep_until(wake.min(until).into()).await;
                    }
                    (Retry::AtOnce, Some(_)) => {}
                }
            }
            Ok(_) => counts.count(&counts.errors),
            Err(_) => {
                counts.count(&counts.errors);
                sender = loader.connect().await?;
            }
        }
    }
    Ok(())
}
