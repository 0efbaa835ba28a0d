//! First-sight tokens: bearer requests whose access token the server has
//! never seen, so none is in its verified-token cache and each costs a
//! signature check. More tokens are minted than the cache holds, each sent
//! once, against the axum + `jsonwebtoken` baseline (which checks every
//! token) in alternating windows; a small hot set of tokens is mixed in to
//! show that the flood does not evict the tokens in use.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::HeaderValue;
use serde::Serialize;
use tessera_core::Tessera;
use tessera_core::jwt;

use crate::client::Loader;
use crate::jwt_baseline::JwtBaseline;
use crate::latency::Latencies;
use crate::node::Node;
use crate::progress::progress;
use crate::report::Row;

/// Token sessions the tokens belong to (started by the password grant):
/// each gets many access tokens, as a session does over its refreshes.
const SESSIONS: usize = 32;
/// Tokens of the hot set, presented again and again.
const HOT_TOKENS: usize = 8;
/// One request in this many carries a hot token (1 %): few enough that
/// the cache hits they get barely move the throughput measured, which is
/// that of first-sight tokens.
const HOT_EVERY: usize = 100;
/// Minted beyond the cache's capacity, so it must evict (20 %).
const OVERFLOW_PERCENT: usize = 20;
/// Each side's window, in turn: both see the same machine.
const WINDOW: Duration = Duration::from_millis(500);

/// What the scenario measured besides its two rows.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FirstSight {
    /// Access tokens minted for the scenario, and how fast.
    pub(crate) tokens_minted: usize,
    pub(crate) minted_per_second: f64,
    /// Requests with a first-sight token answered 200 in measured windows.
    pub(crate) first_sight_requests: u64,
    /// Throughput against the baseline's, in alternating windows.
    pub(crate) ratio_to_baseline: f64,
    /// Share of requests carrying a hot token, and how many hot tokens.
    pub(crate) hot_share: f64,
    pub(crate) hot_tokens: usize,
    /// Hot-token requests answered, and how many of them the cache served.
    pub(crate) hot_requests: u64,
    pub(crate) hot_hits: u64,
    pub(crate) hot_hit_rate: f64,
    /// The verified-token cache: its bound, the most it held at the end of
    /// a window, and what it held after the scenario.
    pub(crate) cache_capacity: usize,
    pub(crate) cache_most_held: usize,
    pub(crate) cache_held_after: usize,
}

/// The `Authorization` values of the scenario: tokens sent once each (in
/// order, by a cursor shared by the connections of one server) and the hot
/// set.
struct Tokens {
    once: Vec<HeaderValue>,
    hot: Vec<HeaderValue>,
}

/// Where one server's connections are in the tokens.
struct Cursor {
    /// Requests sent so far, every [`HOT_EVERY`]th with a hot token.
    sent: AtomicUsize,
    /// The next token sent once.
    next: AtomicUsize,
    /// The baseline keeps no cache: it may go round again.
    wraps: bool,
}

impl Cursor {
    fn new(wraps: bool) -> Self {
        Self {
            sent: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            wraps,
        }
    }

    /// The token of the next request and whether it is a hot one; `None`
    /// when every token has been sent once.
    fn take<'a>(&self, tokens: &'a Tokens) -> Option<(&'a HeaderValue, bool)> {
        let sent = self.sent.fetch_add(1, Ordering::Relaxed);
        if (sent + 1).is_multiple_of(HOT_EVERY) {
            let hot = sent / HOT_EVERY;
            return tokens
                .hot
                .get(hot % tokens.hot.len().max(1))
                .map(|t| (t, true));
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let token = if self.wraps {
            tokens.once.get(i % tokens.once.len().max(1))
        } else {
            tokens.once.get(i)
        };
        token.map(|t| (t, false))
    }

    /// Whether every token has been sent once.
    fn done(&self, tokens: &Tokens) -> bool {
        self.next.load(Ordering::Relaxed) >= tokens.once.len()
    }
}

/// One window of one server.
struct Window {
    latencies: Latencies,
    errors: u64,
    hot_answered: u64,
    elapsed: Duration,
}

/// The scenario on `node` (its bearer tokens, the baseline checking the
/// same ones), with `connections` connections per side: the rows for
/// Tessera and the baseline, and the rest of what it found.
pub(crate) async fn first_sight(
    node: &Node,
    loader: &Loader,
    connections: usize,
) -> anyhow::Result<(Row, Row, FirstSight)> {
    let core = &node.core;
    let (_, capacity) = core.signing_keys.verified_cache_size();
    let count = capacity + capacity * OVERFLOW_PERCENT / 100;
    progress(&format!("first-sight tokens: minting {count}"));
    let minting = Instant::now();
    let mut minted = mint(node, loader, count + HOT_TOKENS).await?;
    let minted_per_second = minted.len() as f64 / minting.elapsed().as_secs_f64();
    let hot = minted.split_off(count);
    let tokens = Arc::new(Tokens { once: minted, hot });

    let baseline = JwtBaseline::start(core).await?;
    let theirs = Loader::new(baseline.addr);
    let (ours, their_cursor) = (Arc::new(Cursor::new(false)), Arc::new(Cursor::new(true)));
    progress("first-sight tokens against axum + jsonwebtoken");
    // Unmeasured: connections, code paths, and the hot set into the cache.
    for token in &tokens.hot {
        check_answered(loader, token).await?;
    }
    let warm = Duration::from_millis(300);
    window(&theirs, &tokens, &their_cursor, connections, warm).await?;
    window(loader, &tokens, &ours, connections, warm).await?;
    let hits_before = cache_hits(core);

    let (mut latencies, mut errors, mut elapsed, mut hot_requests) =
        (Latencies::new()?, 0, Duration::ZERO, 0);
    let (mut base_latencies, mut base_errors, mut base_elapsed) =
        (Latencies::new()?, 0, Duration::ZERO);
    let mut most_held = 0;
    while !ours.done(&tokens) {
        let run = window(&theirs, &tokens, &their_cursor, connections, WINDOW).await?;
        base_latencies.add(&run.latencies)?;
        base_errors += run.errors;
        base_elapsed += run.elapsed;
        let run = window(loader, &tokens, &ours, connections, WINDOW).await?;
        latencies.add(&run.latencies)?;
        errors += run.errors;
        elapsed += run.elapsed;
        hot_requests += run.hot_answered;
        most_held = most_held.max(core.signing_keys.verified_cache_size().0);
    }
    let hot_hits = cache_hits(core).saturating_sub(hits_before);
    drop(baseline);

    let mut row = Row::new(
        "first-sight tokens (EdDSA; ratio to axum+jsonwebtoken)".to_owned(),
        &latencies,
        errors,
        elapsed,
    );
    let base = Row::new(
        "axum + jsonwebtoken, verify per request (baseline)".to_owned(),
        &base_latencies,
        base_errors,
        base_elapsed,
    );
    let ratio = if base.per_second > 0.0 {
        row.per_second / base.per_second
    } else {
        0.0
    };
    row.ratio_to_ceiling = Some(ratio);
    let found = FirstSight {
        tokens_minted: tokens.once.len() + tokens.hot.len(),
        minted_per_second,
        first_sight_requests: latencies.count().saturating_sub(hot_requests),
        ratio_to_baseline: ratio,
        hot_share: 1.0 / HOT_EVERY as f64,
        hot_tokens: tokens.hot.len(),
        hot_requests,
        hot_hits,
        hot_hit_rate: if hot_requests > 0 {
            hot_hits as f64 / hot_requests as f64
        } else {
            0.0
        },
        cache_capacity: capacity,
        cache_most_held: most_held,
        cache_held_after: core.signing_keys.verified_cache_size().0,
    };
    Ok((row, base, found))
}

/// `count` access tokens for sessions of the bench user, signed by the
/// server's own minting code with its current key, as a refresh mints
/// them (without the refresh's store write: the store is not what this
/// measures). The sessions are real ones, from the password grant.
async fn mint(node: &Node, loader: &Loader, count: usize) -> anyhow::Result<Vec<HeaderValue>> {
    let core = &node.core;
    let user = node
        .store()
        .user_by_username("bench")
        .await?
        .context("the bench user")?
        .user;
    let keyring = core.signing_keys.keyring();
    let policy = core.context.config().tokens.clone();
    let mut sessions = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        let access = loader.access_token().await?;
        let claims = jwt::verify(&keyring, &policy, &access, core.context.now())
            .context("a token of the password grant")?;
        sessions.push(claims.sid);
    }
    let sessions = Arc::new(sessions);
    let now = core.context.now();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_worker = count.div_ceil(workers);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (keyring, policy, sessions) = (keyring.clone(), policy.clone(), sessions.clone());
            let (user_id, roles) = (user.id, user.roles.clone());
            let range = (w * per_worker)..((w + 1) * per_worker).min(count);
            tokio::task::spawn_blocking(move || {
                range
                    .map(|i| {
                        let sid = sessions.get(i % sessions.len()).context("a session")?;
                        let claims = jwt::new_claims(&policy, user_id, sid, roles.clone(), now)?;
                        let token = jwt::mint(&keyring, &claims)?;
                        HeaderValue::try_from(format!("Bearer {token}"))
                            .context("a token as a header value")
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
        })
        .collect();
    let mut tokens = Vec::with_capacity(count);
    for task in tasks {
        tokens.extend(task.await.context("minting task")??);
    }
    Ok(tokens)
}

/// `GET /v1/me` with `authorization`.
fn me(authorization: &HeaderValue) -> anyhow::Result<Request<Full<Bytes>>> {
    Request::get("/v1/me")
        .header("host", "127.0.0.1")
        .header("authorization", authorization.clone())
        .body(Full::new(Bytes::new()))
        .context("building a request")
}

/// One request with `token`, which must be accepted.
async fn check_answered(loader: &Loader, token: &HeaderValue) -> anyhow::Result<()> {
    let (status, _, body) = loader.once(me(token)?).await?;
    if status != 200 {
        bail!(
            "a minted token was refused ({status}): {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// `connections` connections sending the next token of `cursor` for
/// `length`, or until every token has been sent once.
async fn window(
    loader: &Loader,
    tokens: &Arc<Tokens>,
    cursor: &Arc<Cursor>,
    connections: usize,
    length: Duration,
) -> anyhow::Result<Window> {
    let started = Instant::now();
    let until = started + length;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (loader, tokens, cursor) = (loader.clone(), tokens.clone(), cursor.clone());
            tokio::spawn(async move {
                let mut sender = loader.connect().await?;
                let (mut latencies, mut errors, mut hot_answered) = (Latencies::new()?, 0, 0);
                while Instant::now() < until {
                    let Some((token, hot)) = cursor.take(&tokens) else {
                        break;
                    };
                    let request = me(token)?;
                    let began = Instant::now();
                    match loader.send(&mut sender, request).await {
                        Ok((200, _, _)) => {
                            latencies.record(began.elapsed());
                            hot_answered += u64::from(hot);
                        }
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            sender = loader.connect().await?;
                        }
                    }
                }
                anyhow::Ok((latencies, errors, hot_answered))
            })
        })
        .collect();
    let mut run = Window {
        latencies: Latencies::new()?,
        errors: 0,
        hot_answered: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (latencies, errors, hot) = task.await.context("load task")??;
        run.latencies.add(&latencies)?;
        run.errors += errors;
        run.hot_answered += hot;
    }
    run.elapsed = started.elapsed();
    Ok(run)
}

/// Hits of the verified-token cache so far, from the server's metrics.
fn cache_hits(core: &Tessera) -> u64 {
    const SERIES: &str = "tessera_verified_token_cache_lookups_total{result=\"hit\"} ";
    core.context
        .metrics()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(SERIES))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |hits| hits as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn tokens(n: usize) -> Tokens {
        let value = |i: usize| HeaderValue::try_from(format!("Bearer t{i}")).unwrap();
        Tokens {
            once: (0..n).map(value).collect(),
            hot: vec![value(1000)],
        }
    }

    #[test]
    fn each_token_is_taken_once_unless_the_cursor_wraps() {
        let tokens = tokens(3);
        let once = Cursor::new(false);
        let taken: Vec<_> = (0..5).map(|_| once.take(&tokens)).collect();
        assert_eq!(taken.iter().flatten().count(), 3);
        assert!(taken[3].is_none() && taken[4].is_none());
        assert!(once.done(&tokens));
        let round = Cursor::new(true);
        let taken: Vec<_> = (0..5).filter_map(|_| round.take(&tokens)).collect();
        assert_eq!(taken.len(), 5);
        assert_eq!(taken[3], taken[0]);
    }

    #[test]
    fn one_request_in_a_hundred_carries_a_hot_token() {
        let tokens = tokens(10_000);
        let cursor = Cursor::new(false);
        let taken: Vec<_> = (0..1000).filter_map(|_| cursor.take(&tokens)).collect();
        let hot: Vec<_> = taken.iter().filter(|(_, hot)| *hot).collect();
        assert_eq!(hot.len(), 10);
        assert!(hot.iter().all(|(t, _)| **t == tokens.hot[0]));
        let once: std::collections::HashSet<_> = taken
            .iter()
            .filter(|(_, hot)| !*hot)
            .map(|(t, _)| t.as_bytes())
            .collect();
        assert_eq!(once.len(), 990, "no token sent twice");
    }
}
