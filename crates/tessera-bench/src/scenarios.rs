//! The measured scenarios: one kind of request against its reference,
//! latency at a fixed rate, sign-in against the Argon2id capacity, and the
//! time a revocation takes to be enforced.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::capacity::Argon2Capacity;
use crate::client::{Loader, form_request};
use crate::latency::Latencies;
use crate::load::{Work, build, drive, warm_up};
use crate::progress::progress;
use crate::report::Row;

/// Half a second of the scenario, half a second of its reference, in turn
/// for the whole duration: both see the same machine, so their ratio holds
/// even when other work on a shared machine comes and goes.
pub(crate) const INTERLEAVE_WINDOW: Duration = Duration::from_millis(500);

/// Sign-in windows alternate with windows of the hashing pool alone, so
/// both see the same machine. A second each: a sign-in takes ~10 ms of
/// hashing, and a window must hold enough of them to count.
pub(crate) const SIGN_IN_WINDOW: Duration = Duration::from_secs(1);

/// `work` on `connections` connections as fast as answered; with a
/// `reference`, in windows alternating with it, for the ratio of the two.
pub(crate) async fn measure(
    loader: &Loader,
    name: &str,
    work: Work,
    connections: usize,
    duration: Duration,
    reference: Option<&Work>,
) -> anyhow::Result<Row> {
    progress(name);
    warm_up(loader, &work, connections).await?;
    let Some(reference) = reference else {
        let run = drive(loader, work, connections, duration, None).await?;
        return Ok(Row::of(name.to_owned(), &run));
    };
    let rounds = (duration.as_millis() / (2 * INTERLEAVE_WINDOW.as_millis())).max(1);
    let (mut latencies, mut errors, mut elapsed) = (Latencies::new()?, 0, Duration::ZERO);
    let (mut reference_count, mut reference_elapsed) = (0u64, Duration::ZERO);
    for _ in 0..rounds {
        let run = drive(
            loader,
            reference.clone(),
            connections,
            INTERLEAVE_WINDOW,
            None,
        )
        .await?;
        reference_count += run.latencies.count();
        reference_elapsed += run.elapsed;
        let run = drive(loader, work.clone(), connections, INTERLEAVE_WINDOW, None).await?;
        latencies.add(&run.latencies)?;
        errors += run.errors;
        elapsed += run.elapsed;
    }
    let mut row = Row::new(name.to_owned(), &latencies, errors, elapsed);
    let reference_per_second = reference_count as f64 / reference_elapsed.as_secs_f64();
    row.ratio_to_ceiling =
        (reference_per_second > 0.0).then(|| row.per_second / reference_per_second);
    Ok(row)
}

/// `work` at `rate` requests per second in all, over `connections`.
pub(crate) async fn paced(
    loader: &Loader,
    work: Work,
    rate: f64,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    let per_connection = (rate / connections as f64).max(1.0);
    let pace = Duration::from_secs_f64(1.0 / per_connection);
    let run = drive(loader, work, connections, duration, Some(pace)).await?;
    Ok(Row::of(format!("paced at {rate:.0}/s"), &run))
}

/// Sign-in throughput, and what the Argon2id parameters allow: verifications
/// per second with every hashing worker busy and nothing else to do.
pub(crate) async fn sign_in_against_capacity(
    loader: &Loader,
    capacity: &Argon2Capacity,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Row, f64)> {
    progress("POST /v1/session (sign-in) against the Argon2id capacity");
    warm_up(loader, &Work::SignIn, connections).await?;
    let rounds = (duration.as_millis() / (2 * SIGN_IN_WINDOW.as_millis())).max(2);
    let (mut latencies, mut errors, mut elapsed) = (Latencies::new()?, 0, Duration::ZERO);
    let mut allowed = 0.0;
    for _ in 0..rounds {
        allowed += capacity.measure(SIGN_IN_WINDOW, connections).await?;
        let run = drive(loader, Work::SignIn, connections, SIGN_IN_WINDOW, None).await?;
        latencies.add(&run.latencies)?;
        errors += run.errors;
        elapsed += run.elapsed;
    }
    let row = Row::new(
        "POST /v1/session (sign-in)".to_owned(),
        &latencies,
        errors,
        elapsed,
    );
    Ok((row, allowed / rounds as f64))
}

/// From a revocation answered to the first refused request, on the same node.
pub(crate) async fn revocation_time(loader: &Loader) -> anyhow::Result<u64> {
    let (access, refresh) = loader.tokens().await?;
    let me = Work::Get {
        path: "/v1/me",
        header: Some(("authorization", format!("Bearer {access}"))),
    };
    let mut sender = loader.connect().await?;
    let (status, _, _) = loader.send(&mut sender, build(&me, "")?).await?;
    if status != 200 {
        bail!("the token did not work before its revocation ({status})");
    }
    let started = Instant::now();
    loader
        .once(form_request(
            "/v1/token/revoke",
            &format!("token={refresh}"),
        )?)
        .await?;
    loop {
        let (status, _, _) = loader.send(&mut sender, build(&me, "")?).await?;
        if status == 401 {
            return Ok(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
        if started.elapsed() > Duration::from_secs(5) {
            bail!("the revoked token was still accepted after 5 s");
        }
    }
}
