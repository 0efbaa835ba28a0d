//! [`Revocations`]: this node's revocation set (see [`crate::revocation`])
//! kept current from the store, and the one way revocations are added.
//!
//! A revocation is stored first, then applied here at once; other nodes
//! learn it when they next [`Revocations::sync`] (on a push from the store,
//! and four times a second). When staleness is bounded, a set not brought up
//! to date for that long refuses access tokens and fails readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::context::Context;
use crate::error::CoreError;
use crate::revocation::{Revocation, RevocationKind, RevocationSet};
use crate::store::StoreError;

/// Most revocations read from the store in one go.
const REVOCATION_PAGE: u32 = 1000;

/// The revocation set and its sync with the store.
pub struct Revocations {
    context: Arc<Context>,
    set: RevocationSet,
    /// The instant the other times count from.
    epoch: Instant,
    /// When the set was last brought up to date from the store, in
    /// nanoseconds since `epoch`: read on every request, so one atomic load
    /// rather than a lock.
    synced: AtomicU64,
    /// `TesseraConfig::revocation_max_staleness`, read on every request.
    max_staleness: Option<Duration>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the set itself: it may hold a great many entries.
        f.debug_struct("Revocations")
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// An empty set, not yet read from the store (see [`Self::sync`]).
    pub fn new(context: Arc<Context>) -> Self {
        let max_staleness = context.config().revocation_max_staleness;
        Self {
            context,
            set: RevocationSet::new(),
            epoch: Instant::now(),
            synced: AtomicU64::new(0),
            max_staleness,
        }
    }

    /// This node's in-memory revocation set.
    pub fn set(&self) -> &RevocationSet {
        &self.set
    }

    /// Pulls revocations other nodes (or processes) stored since this node
    /// last looked; returns how many were new.
    pub async fn sync(&self) -> Result<usize, CoreError> {
        // Taken before reading: what was stored before this instant is seen.
        let synced_at = Instant::now();
        let mut added = 0;
        loop {
            let page = self
                .context
                .store()
                .revocations_since(self.set.cursor(), self.context.now(), REVOCATION_PAGE)
                .await?;
            added += self.set.apply(&page);
            if let Some(last) = page.last() {
                self.set.advance_cursor(last.seq);
            }
            if page.len() < REVOCATION_PAGE as usize {
                // Never backwards: a slower sync finishing late keeps the
                // later mark of one that started after it.
                self.synced
                    .fetch_max(self.since_epoch(synced_at), Ordering::Release);
                return Ok(added);
            }
        }
    }

    /// Unexpired revocations after `cursor`, for outside verifiers.
    pub async fn since(&self, cursor: i64, limit: u32) -> Result<Vec<Revocation>, CoreError> {
        Ok(self
            .context
            .store()
            .revocations_since(cursor, self.context.now(), limit)
            .await?)
    }

    /// Err when staleness is bounded and the last successful sync is older.
    pub fn fresh(&self) -> Result<(), CoreError> {
        self.fresh_at(Instant::now())
    }

    /// [`Self::fresh`] at `at` (a caller that has read the clock already).
    pub fn fresh_at(&self, at: Instant) -> Result<(), CoreError> {
        let Some(limit) = self.max_staleness else {
            return Ok(());
        };
        if at.saturating_duration_since(self.synced_at()) > limit {
            return Err(CoreError::Store(StoreError::Unavailable(
                "the revocation set cannot be brought up to date".into(),
            )));
        }
        Ok(())
    }

    /// Stores revocations and applies them to this node's set at once;
    /// counts them under `reason` (`tessera_revocations_total`).
    pub(crate) async fn revoke(
        &self,
        entries: Vec<(RevocationKind, String, OffsetDateTime)>,
        reason: &'static str,
    ) -> Result<(), CoreError> {
        if !entries.is_empty() {
            let stored = self.context.store().insert_revocations(&entries).await?;
            self.set.apply(&stored);
            self.context
                .metrics()
                .revoked(reason, u64::try_from(stored.len()).unwrap_or(u64::MAX));
        }
        Ok(())
    }

    /// Entries in this node's set, and how long ago it was last brought up
    /// to date from the store (for metrics).
    pub fn status(&self) -> (usize, Duration) {
        (self.set.len(), self.synced_at().elapsed())
    }

    /// When the set was last brought up to date.
    fn synced_at(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.synced.load(Ordering::Acquire))
    }

    /// `at` as nanoseconds since the epoch (saturating: 584 years).
    fn since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}
