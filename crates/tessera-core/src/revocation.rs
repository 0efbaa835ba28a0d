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
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub expires_at: OffsetDateTime,
}

/// Revoked ids of one kind, and when each stops mattering (Unix
/// milliseconds, rounded up so that an entry is never dropped early).
#[derive(Debug, Default)]
struct Ids {
    /// Ids of the shape Tessera makes (16 random bytes in base64url: every
    /// session id and `jti`) kept as those bytes, in the table itself: no
    /// allocation per entry, about half the memory of the text (52 against
    /// 110 bytes an entry at a million, measured by `tessera bench
    /// --populate`). On a fast seeded hash: these ids are random and made
    /// here, and every request with a session looks one up.
    compact: HashMap<[u8; ID_BYTES], i64, foldhash::fast::RandomState>,
    /// Any other id, as text.
    other: HashMap<Box<str>, i64>,
}

/// Bytes of the ids Tessera makes.
pub const ID_BYTES: usize = 16;

/// The bytes of an id of the shape Tessera makes. Only the canonical
/// encoding decodes (unused trailing bits must be zero), so each text has
/// at most one form and each form one text.
pub(crate) fn compact(id: &str) -> Option<[u8; ID_BYTES]> {
    crate::base64url::decode::<ID_BYTES>(id.as_bytes())
}

/// `t` in Unix milliseconds, rounded up.
fn millis_up(t: OffsetDateTime) -> i64 {
    let nanos = t.unix_timestamp_nanos();
    let up = nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0);
    i64::try_from(up).unwrap_or(i64::MAX)
}

impl Ids {
    /// Adds `id` (or moves its expiry); whether it is new.
    fn insert(&mut self, id: &str, expires_at: OffsetDateTime) -> bool {
        let expires = millis_up(expires_at);
        match compact(id) {
            Some(key) => self.compact.insert(key, expires).is_none(),
            None => self.other.insert(id.into(), expires).is_none(),
        }
    }

    fn contains(&self, id: &str) -> bool {
        match compact(id) {
            Some(key) => self.compact.contains_key(&key),
            None => self.other.contains_key(id),
        }
    }

    /// Keeps the entries that can still match a valid token at `now`.
    fn retain_live(&mut self, now: OffsetDateTime) {
        // Entries are kept to the millisecond rounded up: one that expires
        // within `now`'s millisecond stays until the next sweep.
        let now = now.unix_timestamp_nanos().div_euclid(1_000_000);
        self.compact.retain(|_, expires| i128::from(*expires) > now);
        self.other.retain(|_, expires| i128::from(*expires) > now);
    }

    fn len(&self) -> usize {
        self.compact.len() + self.other.len()
    }
}

#[derive(Debug, Default)]
struct Entries {
    sids: Ids,
    jtis: Ids,
}

impl Entries {
    fn of(&mut self, kind: RevocationKind) -> &mut Ids {
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
    /// Revoked ids and when each stops mattering, per kind; a lookup
    /// allocates nothing (it runs on every request).
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
                if entries.of(r.kind).insert(&r.value, r.expires_at) {
                    fresh.push(r);
                }
            }
        }
        // Nobody streaming (a node loading its set at start): no copies.
        if self.feed.receiver_count() > 0 {
            for r in &fresh {
                // A subscriber gone meanwhile is fine.
                let _ = self.feed.send((*r).clone());
            }
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
        entries.sids.contains(sid) || entries.jtis.contains(jti)
    }

    /// Whether the session `sid` has been ended (cookie or token).
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.sids.contains(sid)
    }

    /// [`Self::is_session_revoked`] for an id of the shape Tessera makes,
    /// given as the bytes its text encodes (as a cache keeps it): the same
    /// answer, with no decoding.
    pub fn is_session_bytes_revoked(&self, sid: &[u8; ID_BYTES]) -> bool {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.sids.compact.contains_key(sid)
    }

    /// Drops entries that can no longer match a valid token.
    pub fn prune(&self, now: OffsetDateTime) -> usize {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let before = entries.len();
        entries.sids.retain_live(now);
        entries.jtis.retain_live(now);
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
    #![allow(clippy::unwrap_used)]
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

    #[test]
    fn ids_tessera_makes_are_kept_as_bytes_and_match_only_their_own_text() {
        let until = OffsetDateTime::now_utc() + Duration::minutes(10);
        let set = RevocationSet::new();
        let sid = crate::session::SessionId::generate().unwrap();
        let jti = crate::secret::random_token(16).unwrap();
        let zeros = "AAAAAAAAAAAAAAAAAAAAAA";
        set.apply(&[
            entry(1, RevocationKind::Sid, sid.as_str(), until),
            entry(2, RevocationKind::Jti, &jti, until),
            entry(3, RevocationKind::Sid, zeros, until),
        ]);
        {
            let entries = set.entries.read().unwrap();
            assert_eq!(entries.sids.compact.len(), 2);
            assert_eq!(entries.jtis.compact.len(), 1);
            assert_eq!(entries.sids.other.len() + entries.jtis.other.len(), 0);
        }
        assert!(set.is_session_revoked(sid.as_str()));
        let bytes = |id: &str| compact(id).unwrap();
        assert!(set.is_session_bytes_revoked(&bytes(sid.as_str())));
        assert!(
            !set.is_session_bytes_revoked(&bytes(&jti)),
            "kinds do not mix"
        );
        assert!(set.is_revoked("other", &jti));
        assert!(!set.is_session_revoked(&jti), "kinds do not mix");
        let unrevoked = crate::session::SessionId::generate().unwrap();
        assert!(!set.is_session_revoked(unrevoked.as_str()));
        assert!(!set.is_session_bytes_revoked(&bytes(unrevoked.as_str())));
        // The same bytes with the unused trailing bits set: another text,
        // which is not the revoked id.
        let other_text = "AAAAAAAAAAAAAAAAAAAAAB";
        assert!(!set.is_session_revoked(other_text));
        set.apply(&[entry(4, RevocationKind::Sid, other_text, until)]);
        assert!(set.is_session_revoked(other_text) && set.is_session_revoked(zeros));
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn an_entry_is_never_pruned_before_it_expires() {
        // Within a millisecond: the set keeps milliseconds, rounded up.
        let expires = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_400_000).unwrap();
        let set = RevocationSet::new();
        set.apply(&[entry(1, RevocationKind::Jti, "j", expires)]);
        assert_eq!(set.prune(expires - Duration::nanoseconds(1)), 0);
        assert_eq!(set.prune(expires), 0, "kept to the end of its millisecond");
        assert!(set.is_revoked("s", "j"));
        assert_eq!(set.prune(expires + Duration::milliseconds(1)), 1);
        assert!(!set.is_revoked("s", "j"));
    }
}
