//! Follows the issuer's revocation feed (`GET /v1/revocations` as
//! server-sent events): resumes from its cursor after a disconnect, backs
//! off while the issuer is away, and keeps the verifier's freshness clock.

use std::sync::Weak;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::revoked::RevocationEntry;
use crate::sse::EventReader;
use crate::verifier::{Shared, unix_now};

/// First wait after a lost connection; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Revoked ids past their expiry are dropped this often.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Runs until the verifier is dropped. `first_answer` hears whether the
/// first connection was accepted.
pub(crate) async fn follow(
    shared: Weak<Shared>,
    first_answer: oneshot::Sender<Result<(), String>>,
) {
    let mut first_answer = Some(first_answer);
    let mut cursor = 0i64;
    let mut backoff = FIRST_BACKOFF;
    let mut last_prune = tokio::time::Instant::now();
    loop {
        let Some(live) = shared.upgrade() else { return };
        let mut synced = false;
        let outcome = read(
            &live,
            &mut cursor,
            &mut synced,
            &mut first_answer,
            &mut last_prune,
        )
        .await;
        drop(live);
        // A connection that caught up served well, however it ended: start
        // the backoff over, so a drop after hours is retried at once.
        if synced {
            backoff = FIRST_BACKOFF;
        }
        if let Err(why) = outcome {
            tracing::warn!(error = %why, "revocation feed lost; reconnecting");
            if let Some(tx) = first_answer.take() {
                let _ = tx.send(Err(why));
            }
        }
        // Jitter spreads many verifiers' reconnects after an issuer restart.
        let spread = u64::try_from(backoff.as_millis()).unwrap_or(1000).min(1000);
        let jitter = Duration::from_millis(u64::from(rand_byte()) * spread / 512);
        tokio::time::sleep(backoff + jitter).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection, until it ends; `synced` tells whether it caught up.
async fn read(
    shared: &Shared,
    cursor: &mut i64,
    synced: &mut bool,
    first_answer: &mut Option<oneshot::Sender<Result<(), String>>>,
    last_prune: &mut tokio::time::Instant,
) -> Result<(), String> {
    let mut request = shared
        .http
        .get(&shared.revocations_uri)
        .query(&[("since", *cursor)])
        .header("accept", "text/event-stream");
    if let Some(secret) = &shared.secret {
        request = request.bearer_auth(secret);
    }
    let mut response = request.send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("the feed answered {}", response.status()));
    }
    // Current only once the backlog since the cursor has arrived, which
    // the issuer marks with `synced` (the caller's flag starts false):
    // until then a revocation made while the feed was away could still be
    // on its way.
    // The issuer sends a heartbeat every second; silence for the whole
    // staleness window means a dead connection, even one TCP still holds.
    let silence = shared.max_staleness.max(Duration::from_secs(2));
    let mut reader = EventReader::default();
    loop {
        let chunk = match tokio::time::timeout(silence, response.chunk()).await {
            Err(_) => return Err("the feed went silent".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let now = unix_now();
        for event in reader.push(&chunk) {
            match event.event.as_str() {
                "revocation" => match serde_json::from_str::<RevocationEntry>(&event.data) {
                    Ok(entry) => {
                        shared.revoked.insert(&entry, now);
                        *cursor = (*cursor).max(entry.seq);
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable revocation entry skipped"),
                },
                "synced" => {
                    *synced = true;
                    // Current before anyone hears it is ready: a verify right
                    // after `build()` returns must not find the feed stale.
                    shared.heard_from_feed();
                    if let Some(tx) = first_answer.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                _ => {}
            }
        }
        // Entries first, then freshness: a token checked after this point
        // sees every revocation the chunk carried.
        if *synced {
            shared.heard_from_feed();
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            shared.revoked.prune(now);
            *last_prune = tokio::time::Instant::now();
        }
    }
}

/// A random byte for jitter (not a secret: the OS generator is overkill
/// but already linked).
fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    let _ = aws_lc_rs::rand::fill(&mut b);
    u8::from_ne_bytes(b)
}
