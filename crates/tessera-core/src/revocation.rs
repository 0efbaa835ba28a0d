//! The revocation set: revoked session ids (`sid`) and token ids (`jti`),
//! each kept until the last access token it could match has expired. Every
//! node holds it in memory, so checking a token costs one hash lookup.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::broadcast;

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RevocationKind {
    /// A session: every token carrying this `sid`.
    Sid,
    /// One access token by `jti`.
    Jti,
}

impl RevocationKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Sid => "sid",
            RevocationKind::Jti => "jti",
        }
    }

    /// Reads the stable name back.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "sid" => Some(RevocationKind::Sid),
            "jti" => Some(RevocationKind::Jti),
            _ => None,
        }
    }
}

/// One revocation, as stored and as published to verifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revocation {
    /// Position in the store's log; the cursor of `GET /v1/revocations`.
    pub seq: i64,
    /// `sid` or `jti`.
    pub kind: RevocationKind,
    /// The revoked id.
    pub value: String,
    /// When no token it could match is valid any more.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct Entries {
    sids: HashMap<String, OffsetDateTime>,
    jtis: HashMap<String, OffsetDateTime>,
}

impl Entries {
    fn map(&mut self, kind: RevocationKind) -> &mut HashMap<String, OffsetDateTime> {
        match kind {
            RevocationKind::Sid => &mut self.sids,
            RevocationKind::Jti => &mut self.jtis,
        }
    }

    fn len(&self) -> usize {
        self.sids.len() + self.jtis.len()
    }
}

/// The in-memory set, with a broadcast of every addition for live feeds.
#[derive(Debug)]
pub struct RevocationSet {
    /// Revoked ids and when each stops mattering, one map per kind so a
    /// lookup by `&str` allocates nothing (it runs on every request).
    entries: RwLock<Entries>,
    cursor: RwLock<i64>,
    feed: broadcast::Sender<Revocation>,
}

impl Default for RevocationSet {
    fn default() -> Self {
        Self::new()
    }
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        let (feed, _) = broadcast::channel(4096);
        Self {
            entries: RwLock::new(Entries::default()),
            cursor: RwLock::new(0),
            feed,
        }
    }

    /// Adds entries (from this node or another); returns how many were new.
    /// Only new entries go out on the live feed.
    pub fn apply(&self, revocations: &[Revocation]) -> usize {
        let mut fresh = Vec::new();
        {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            for r in revocations {
                if entries
                    .map(r.kind)
                    .insert(r.value.clone(), r.expires_at)
                    .is_none()
                {
                    fresh.push(r);
                }
            }
        }
        for r in &fresh {
            // No subscriber is fine: nobody is streaming.
            let _ = self.feed.send((*r).clone());
        }
        fresh.len()
    }

    /// Records that the store's log has been read up to `seq`.
    pub fn advance_cursor(&self, seq: i64) {
        let mut cursor = self.cursor.write().unwrap_or_else(|p| p.into_inner());
        *cursor = (*cursor).max(seq);
    }

    /// Whether a token with this `sid` and `jti` is revoked.
    pub fn is_revoked(&self, sid: &str, jti: &str) -> bool {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        // Entries are pruned lazily; an expired one can only match tokens
        // that have themselves expired, so counting it is harmless.
        entries.sids.contains_key(sid) || entries.jtis.contains_key(jti)
    }

    /// Whether the session `sid` has been ended (cookie or token).
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.sids.contains_key(sid)
    }

    /// Drops entries that can no longer match a valid token.
    pub fn prune(&self, now: OffsetDateTime) -> usize {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let before = entries.len();
        entries.sids.retain(|_, expires| *expires > now);
        entries.jtis.retain(|_, expires| *expires > now);
        before - entries.len()
    }

    /// The store position read up to by [`RevocationSet::advance_cursor`].
    pub fn cursor(&self) -> i64 {
        *self.cursor.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A live feed of additions from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Revocation> {
        self.feed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn entry(
        seq: i64,
        kind: RevocationKind,
        value: &str,
        expires_at: OffsetDateTime,
    ) -> Revocation {
        Revocation {
            seq,
            kind,
            value: value.into(),
            expires_at,
        }
    }

    #[test]
    fn matches_by_sid_or_jti_and_prunes_expired() {
        let now = OffsetDateTime::now_utc();
        let set = RevocationSet::new();
        let mut feed = set.subscribe();
        assert_eq!(
            set.apply(&[
                entry(1, RevocationKind::Sid, "s1", now + Duration::minutes(10)),
                entry(2, RevocationKind::Jti, "j1", now + Duration::minutes(1)),
            ]),
            2
        );
        assert!(set.is_revoked("s1", "other"));
        assert!(set.is_revoked("other", "j1"));
        assert!(!set.is_revoked("j1", "s1"), "kinds do not mix");
        assert_eq!(set.cursor(), 0, "only reading the store moves the cursor");
        set.advance_cursor(2);
        set.advance_cursor(1);
        assert_eq!(set.cursor(), 2);
        assert_eq!(feed.try_recv().map(|r| r.seq), Ok(1));
        assert_eq!(set.prune(now + Duration::minutes(2)), 1);
        assert!(!set.is_revoked("other", "j1"));
        assert!(set.is_revoked("s1", "x"));
        assert_eq!(
            set.apply(&[entry(1, RevocationKind::Sid, "s1", now)]),
            0,
            "idempotent"
        );
    }
}
