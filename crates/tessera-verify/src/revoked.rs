//! The revoked ids a verifier has heard of: sessions (`sid`) and single
//! tokens (`jti`), each kept until the last token it could match expires.

use std::collections::HashMap;
use std::sync::RwLock;

use serde::Deserialize;

/// One entry of the revocation feed (`GET /v1/revocations`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RevocationEntry {
    /// Position in the issuer's log: the feed's cursor.
    pub seq: i64,
    /// `sid` or `jti`.
    pub kind: String,
    /// The revoked id.
    pub value: String,
    /// RFC 3339 time after which no token it could match is valid.
    pub expires_at: String,
}

#[derive(Debug, Default)]
struct Ids {
    sids: HashMap<String, i64>,
    jtis: HashMap<String, i64>,
}

/// Revoked ids, each with the Unix second after which it no longer matters.
#[derive(Debug, Default)]
pub struct RevokedIds {
    ids: RwLock<Ids>,
}

impl RevokedIds {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry of the feed; unknown kinds are ignored (a newer issuer
    /// may publish kinds this version does not know). An entry whose expiry
    /// cannot be read is kept for a day: refusing too long is safe,
    /// forgetting early is not.
    pub fn insert(&self, entry: &RevocationEntry, now: i64) {
        let until = parse_rfc3339(&entry.expires_at).unwrap_or(now.saturating_add(86_400));
        let mut ids = self.ids.write().unwrap_or_else(|p| p.into_inner());
        let map = match entry.kind.as_str() {
            "sid" => &mut ids.sids,
            "jti" => &mut ids.jtis,
            _ => return,
        };
        let slot = map.entry(entry.value.clone()).or_insert(until);
        *slot = (*slot).max(until);
    }

    /// Whether a token of session `sid` with id `jti` is revoked. Lookups
    /// by `&str` allocate nothing: this runs on every request.
    pub fn is_revoked(&self, sid: &str, jti: &str) -> bool {
        let ids = self.ids.read().unwrap_or_else(|p| p.into_inner());
        ids.sids.contains_key(sid) || ids.jtis.contains_key(jti)
    }

    /// Drops entries that no longer matter at `now`.
    pub fn prune(&self, now: i64) {
        let mut ids = self.ids.write().unwrap_or_else(|p| p.into_inner());
        ids.sids.retain(|_, until| *until > now);
        ids.jtis.retain(|_, until| *until > now);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        let ids = self.ids.read().unwrap_or_else(|p| p.into_inner());
        ids.sids.len() + ids.jtis.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Unix seconds of an RFC 3339 UTC time such as `2026-11-30T19:00:00Z` or
/// with a fraction and offset (the issuer writes UTC; offsets are honoured).
fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(b.get(range)?).ok()?.parse().ok()
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || b.get(13) != Some(&b':') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Skip a fraction, then read the offset.
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let minutes = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second.min(60) - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, value: &str, expires_at: &str) -> RevocationEntry {
        RevocationEntry {
            seq: 1,
            kind: kind.into(),
            value: value.into(),
            expires_at: expires_at.into(),
        }
    }

    #[test]
    fn rfc3339_times_read_back() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-30T19:00:00Z"), Some(1_796_065_200));
        assert_eq!(
            parse_rfc3339("2026-11-30T19:00:00.123456Z"),
            Some(1_796_065_200)
        );
        assert_eq!(
            parse_rfc3339("2026-11-30T20:00:00+01:00"),
            Some(1_796_065_200)
        );
        for bad in [
            "",
            "2026-11-30",
            "2026-13-30T19:00:00Z",
            "2026-11-30T19:00:00",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn kinds_do_not_mix_and_entries_expire() {
        let set = RevokedIds::new();
        set.insert(&entry("sid", "s1", "1970-01-01T00:01:40Z"), 0);
        set.insert(&entry("jti", "j1", "1970-01-01T00:01:40Z"), 0);
        set.insert(&entry("other", "o1", "1970-01-01T00:01:40Z"), 0);
        assert!(set.is_revoked("s1", "x"));
        assert!(set.is_revoked("x", "j1"));
        assert!(!set.is_revoked("j1", "s1"));
        assert_eq!(set.len(), 2);
        set.prune(100);
        assert!(set.is_empty());
        set.insert(&entry("sid", "s2", "garbage"), 0);
        set.prune(86_399);
        assert!(set.is_revoked("s2", ""), "unreadable expiry kept for a day");
    }
}
