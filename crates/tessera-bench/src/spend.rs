//! Load that spends credentials: each `GET /v1/me` carries a session cookie
//! no request has carried before, so neither the server's cache nor any
//! other holds its session (a cold request); each refresh presents the
//! token the previous exchange handed out, and the tokens outlive a stretch
//! of load, so no stretch pays for a sign-in.
//!
//! A stretch of load runs in phases that the caller moves on (a request
//! counts in the phase it started in), ending when the caller says so or,
//! for cookies, when none are left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::client::Loader;
use crate::latency::Latencies;
use crate::load::{Run, Work, build};

/// Cookies to present once each.
pub(crate) struct Cookies {
    /// `name=value` of every cookie, in the order handed out.
    values: Vec<String>,
    next: AtomicUsize,
}

impl Cookies {
    pub(crate) fn new(values: Vec<String>) -> Self {
        Self {
            values,
            next: AtomicUsize::new(0),
        }
    }

    /// The next cookie never presented, if any is left.
    fn take(&self) -> Option<&str> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.values.get(i).map(String::as_str)
    }
}

/// Refresh tokens in hand, one per connection while a stretch runs.
pub(crate) struct Tokens(Mutex<Vec<String>>);

impl Tokens {
    pub(crate) fn new(tokens: Vec<String>) -> Self {
        Self(Mutex::new(tokens))
    }

    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn give_back(&self, token: String) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(token);
    }
}

/// What a stretch spends.
#[derive(Clone)]
pub(crate) enum Spend {
    /// `GET /v1/me`, each with a cookie of its own.
    Cookies(Arc<Cookies>),
    /// `POST /v1/token` (`refresh_token`), each connection with its token.
    Refresh(Arc<Tokens>),
}

/// The phase a stretch is in, moved on by the caller; past the last, the
/// connections stop.
#[derive(Clone)]
pub(crate) struct Phase(Arc<AtomicUsize>);

impl Phase {
    pub(crate) fn new() -> Self {
        Self(Arc::new(AtomicUsize::new(0)))
    }

    pub(crate) fn advance(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// Answered requests' latencies and failed requests, per phase.
pub(crate) type PhaseRuns = Vec<(Latencies, u64)>;

/// A stretch of `connections` connections spending `spend` against
/// `loader`, each every `pace` if given; `phases` phases moved on by
/// `phase`. Join the returned set with [`finish`].
pub(crate) fn start(
    loader: &Loader,
    spend: &Spend,
    connections: usize,
    pace: Option<Duration>,
    phase: &Phase,
    phases: usize,
) -> JoinSet<anyhow::Result<PhaseRuns>> {
    let mut set = JoinSet::new();
    for _ in 0..connections {
        set.spawn(connection(
            loader.clone(),
            spend.clone(),
            pace,
            phase.clone(),
            phases,
        ));
    }
    set
}

/// Waits for a stretch's connections; their phases merged.
pub(crate) async fn finish(
    mut set: JoinSet<anyhow::Result<PhaseRuns>>,
    phases: usize,
) -> anyhow::Result<PhaseRuns> {
    let mut merged = (0..phases)
        .map(|_| Ok((Latencies::new()?, 0)))
        .collect::<anyhow::Result<PhaseRuns>>()?;
    while let Some(joined) = set.join_next().await {
        for (into, (latencies, errors)) in merged.iter_mut().zip(joined.context("load task")??) {
            into.0.add(&latencies)?;
            into.1 += errors;
        }
    }
    Ok(merged)
}

/// `spend` on `connections` connections as fast as answered, for
/// `duration` or until the cookies run out.
pub(crate) async fn window(
    loader: &Loader,
    spend: &Spend,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let phase = Phase::new();
    let started = Instant::now();
    let mut set = start(loader, spend, connections, None, &phase, 1);
    let deadline = tokio::time::sleep(duration);
    tokio::pin!(deadline);
    let mut ended = None;
    let mut merged = Latencies::new()?;
    let mut errors = 0;
    loop {
        tokio::select! {
            () = &mut deadline, if ended.is_none() => {
                phase.advance();
                ended = Some(Instant::now());
            }
            joined = set.join_next() => {
                let Some(joined) = joined else { break };
                for (latencies, failed) in joined.context("load task")?? {
                    merged.add(&latencies)?;
                    errors += failed;
                }
            }
        }
    }
    let ended = ended.unwrap_or_else(Instant::now);
    Ok(Run {
        latencies: merged,
        errors,
        elapsed: ended - started,
    })
}

/// One connection of a stretch.
async fn connection(
    loader: Loader,
    spend: Spend,
    pace: Option<Duration>,
    phase: Phase,
    phases: usize,
) -> anyhow::Result<PhaseRuns> {
    let mut runs = (0..phases)
        .map(|_| Ok((Latencies::new()?, 0)))
        .collect::<anyhow::Result<PhaseRuns>>()?;
    let mut token = match &spend {
        Spend::Refresh(tokens) => match tokens.take() {
            Some(token) => Some(token),
            None => return Ok(runs),
        },
        Spend::Cookies(_) => None,
    };
    let mut sender = loader.connect().await?;
    let mut next = Instant::now();
    loop {
        if let Some(pace) = pace {
            next += pace;
            tokio::time::sleep_until(next.into()).await;
        }
        let current = phase.get();
        let Some((latencies, errors)) = runs.get_mut(current) else {
            break;
        };
        let request = match (&spend, &token) {
            (Spend::Cookies(cookies), _) => {
                let Some(cookie) = cookies.take() else { break };
                build(
                    &Work::Get {
                        path: "/v1/me",
                        header: Some(("cookie", cookie.to_owned())),
                    },
                    "",
                )?
            }
            (Spend::Refresh(_), Some(token)) => build(&Work::Refresh, token)?,
            (Spend::Refresh(_), None) => break,
        };
        let started = Instant::now();
        let outcome = loader.send(&mut sender, request).await;
        let took = started.elapsed();
        match outcome {
            Ok((200, _, body)) => {
                if token.is_some() {
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    match value.get("refresh_token").and_then(Value::as_str) {
                        Some(next_token) => token = Some(next_token.to_owned()),
                        None => {
                            *errors += 1;
                            continue;
                        }
                    }
                }
                latencies.record(took);
            }
            Ok(_) => *errors += 1,
            Err(_) => {
                *errors += 1;
                sender = loader.connect().await?;
            }
        }
    }
    if let (Spend::Refresh(tokens), Some(token)) = (&spend, token) {
        tokens.give_back(token);
    }
    Ok(runs)
}
