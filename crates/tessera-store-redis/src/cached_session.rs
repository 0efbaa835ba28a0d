//! A session as the Redis cache holds it: one key per session, named by
//! what its lookup knows, and a compact binary value with the rest.
//!
//! A cookie session is looked up by its secret's hash, a token session by
//! its id (the access token's `sid`), so each is cached under that alone:
//! `s:c:<32-byte hash>` or `s:t:<16-byte id>`. The value carries what the
//! key does not, and only what authentication needs (no address or user
//! agent, as in the in-process cache):
//!
//! ```text
//! version (1) · flags (kind, remember me, authentication methods) · user id (16)
//! · session id (16, cookie) or secret hash (32, token)
//! · created_at in ms, then last_seen_at − created_at, idle_expires_at −
//!   last_seen_at, absolute_expires_at − created_at (zigzag varints)
//! ```
//!
//! Anything else read back (another version, a truncated or padded value,
//! a time out of range) decodes to nothing: a cache miss, never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_core::auth_methods::AuthMethods;
use tessera_core::secret::SecretHash;
use tessera_core::session::{Session, SessionId, SessionKind};
use tessera_core::store::{from_millis, to_millis};
use uuid::Uuid;

/// The layout written; values of any other version are misses.
const VERSION: u8 = 2;
/// Flag bits: the session is a token session; the user asked to be remembered.
const TOKEN: u8 = 1;
const REMEMBER_ME: u8 = 2;
/// The session's authentication methods ([`AuthMethods::bits`]) sit in the
/// flags from this bit on.
const AMR_SHIFT: u8 = 2;
const AMR_MASK: u8 = 0b0001_1100;
/// Bytes behind a generated session id (22 base64url characters).
const ID_BYTES: usize = 16;
/// Longest varint of a u64.
const MAX_VARINT: usize = 10;

/// Where a session is cached: what its lookup knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A cookie session, by its secret's hash.
    Cookie(SecretHash),
    /// A token session, by its id (and the id's bytes, the key).
    Token(SessionId, [u8; ID_BYTES]),
}

impl Slot {
    /// The slot of a token session's id; none for an id that was not
    /// generated (it cannot name a cached session).
    pub(crate) fn token(id: &SessionId) -> Option<Self> {
        id_bytes(id).map(|bytes| Self::Token(id.clone(), bytes))
    }

    /// Where `session` is cached.
    pub(crate) fn of(session: &Session) -> Option<Self> {
        match session.kind {
            SessionKind::Cookie => Some(Self::Cookie(session.secret_hash)),
            SessionKind::Token => Self::token(&session.id),
        }
    }

    /// The key, under the deployment's prefix.
    pub(crate) fn key(&self, prefix: &str) -> Vec<u8> {
        let (tag, bytes): (&[u8], &[u8]) = match self {
            Self::Cookie(hash) => (b"s:c:", hash.as_bytes()),
            Self::Token(_, id) => (b"s:t:", id),
        };
        [prefix.as_bytes(), tag, bytes].concat()
    }
}

/// The id's 16 bytes, if it is the canonical encoding of 16 bytes (as every
/// generated id is).
fn id_bytes(id: &SessionId) -> Option<[u8; ID_BYTES]> {
    let mut bytes = [0u8; ID_BYTES];
    match URL_SAFE_NO_PAD.decode_slice(id.as_str(), &mut bytes) {
        Ok(ID_BYTES) => Some(bytes),
        _ => None,
    }
}

/// `session`'s cached value; none if it cannot be cached (an id that was
/// not generated).
pub(crate) fn encode(session: &Session) -> Option<Vec<u8>> {
    let mut flags = 0;
    if session.kind == SessionKind::Token {
        flags |= TOKEN;
    }
    if session.remember_me {
        flags |= REMEMBER_ME;
    }
    flags |= (session.amr.bits() << AMR_SHIFT) & AMR_MASK;
    let mut out = Vec::with_capacity(2 + 16 + 32 + 4 * MAX_VARINT);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(session.user_id.as_bytes());
    match session.kind {
        SessionKind::Cookie => out.extend_from_slice(&id_bytes(&session.id)?),
        SessionKind::Token => out.extend_from_slice(session.secret_hash.as_bytes()),
    }
    let created = to_millis(session.created_at);
    let last_seen = to_millis(session.last_seen_at);
    put_varint(&mut out, zigzag(created));
    put_varint(&mut out, zigzag(last_seen.checked_sub(created)?));
    put_varint(
        &mut out,
        zigzag(to_millis(session.idle_expires_at).checked_sub(last_seen)?),
    );
    put_varint(
        &mut out,
        zigzag(to_millis(session.absolute_expires_at).checked_sub(created)?),
    );
    Some(out)
}

/// The session cached in `slot` as `value`, if it is one this layout wrote
/// for that slot.
pub(crate) fn decode(slot: &Slot, value: &[u8]) -> Option<Session> {
    let mut r = Reader(value);
    if r.byte()? != VERSION {
        return None;
    }
    let flags = r.byte()?;
    if flags & !(TOKEN | REMEMBER_ME | AMR_MASK) != 0 {
        return None;
    }
    let amr = AuthMethods::from_bits((flags & AMR_MASK) >> AMR_SHIFT)?;
    let user_id = Uuid::from_bytes(r.array()?);
    let (kind, id, secret_hash) = match (slot, flags & TOKEN != 0) {
        (Slot::Cookie(hash), false) => {
            let raw: [u8; ID_BYTES] = r.array()?;
            let id = SessionId::parse(&URL_SAFE_NO_PAD.encode(raw))?;
            (SessionKind::Cookie, id, *hash)
        }
        (Slot::Token(id, _), true) => (
            SessionKind::Token,
            id.clone(),
            SecretHash::from_bytes(r.array()?),
        ),
        _ => return None,
    };
    let created = unzigzag(r.varint()?);
    let last_seen = created.checked_add(unzigzag(r.varint()?))?;
    let idle_expires = last_seen.checked_add(unzigzag(r.varint()?))?;
    let absolute_expires = created.checked_add(unzigzag(r.varint()?))?;
    if !r.0.is_empty() {
        return None;
    }
    Some(Session {
        id,
        kind,
        user_id,
        secret_hash,
        created_at: from_millis(created).ok()?,
        last_seen_at: from_millis(last_seen).ok()?,
        idle_expires_at: from_millis(idle_expires).ok()?,
        absolute_expires_at: from_millis(absolute_expires).ok()?,
        remember_me: flags & REMEMBER_ME != 0,
        amr,
        ip: None,
        user_agent: None,
    })
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a value front to back; `None` past its end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    /// A varint of at most 10 bytes whose bits fit a u64.
    fn varint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for i in 0..MAX_VARINT {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            let shift = 7 * i as u32;
            if shift == 63 && bits > 1 {
                return None;
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use tessera_core::secret::{Secret, SecretKind};
    use time::{Duration, OffsetDateTime};

    fn session(kind: SessionKind, remember_me: bool) -> Session {
        let t = OffsetDateTime::now_utc();
        let t = t.replace_millisecond(t.millisecond()).unwrap();
        Session {
            id: SessionId::generate().unwrap(),
            kind,
            user_id: Uuid::new_v4(),
            secret_hash: Secret::generate(SecretKind::Session).unwrap().hash(),
            created_at: t,
            last_seen_at: t,
            idle_expires_at: t + Duration::minutes(30),
            absolute_expires_at: t + Duration::hours(12),
            remember_me,
            amr: if remember_me {
                AuthMethods::PASSWORD.with(tessera_core::auth_methods::AuthMethod::OneTimeCode)
            } else {
                AuthMethods::PASSWORD
            },
            ip: Some("203.0.113.10".parse().unwrap()),
            user_agent: Some("Mozilla/5.0".into()),
        }
    }

    /// What the cache gives back: the session without address and user agent.
    fn cached(s: &Session) -> Session {
        Session {
            ip: None,
            user_agent: None,
            ..s.clone()
        }
    }

    fn all_kinds() -> Vec<Session> {
        vec![
            session(SessionKind::Cookie, false),
            session(SessionKind::Cookie, true),
            session(SessionKind::Token, false),
            session(SessionKind::Token, true),
        ]
    }

    #[test]
    fn round_trips_every_kind() {
        for s in all_kinds() {
            let slot = Slot::of(&s).unwrap();
            let value = encode(&s).unwrap();
            assert_eq!(decode(&slot, &value), Some(cached(&s)), "{s:?}");
        }
    }

    #[test]
    fn round_trips_odd_times() {
        let base = session(SessionKind::Cookie, false);
        let epoch = OffsetDateTime::UNIX_EPOCH;
        for (created, seen, idle, absolute) in [
            // A node whose clock is behind touched it "before" creation.
            (0, -1500, 0, 1),
            (0, 0, -1, -1),
            (-86_400_000, 5, 7, 9),
            (253_402_300_799_000, 0, 0, 0),
            (
                1_700_000_000_123,
                3_600_000_000,
                2_592_000_000,
                2_592_000_000,
            ),
        ] {
            let at = |ms: i64| epoch + Duration::milliseconds(ms);
            let s = Session {
                created_at: at(created),
                last_seen_at: at(created + seen),
                idle_expires_at: at(created + seen + idle),
                absolute_expires_at: at(created + absolute),
                ..base.clone()
            };
            let value = encode(&s).unwrap();
            assert_eq!(
                decode(&Slot::of(&s).unwrap(), &value),
                Some(cached(&s)),
                "{created} {seen} {idle} {absolute}"
            );
        }
    }

    #[test]
    fn keys_and_values_are_small() {
        let cookie = session(SessionKind::Cookie, true);
        let token = session(SessionKind::Token, true);
        // The key a cookie session is found by: the prefix, a tag and the
        // raw hash; a token session's: its id's 16 bytes.
        let cookie_key = Slot::of(&cookie).unwrap().key("tessera:");
        assert_eq!(cookie_key.len(), 8 + 4 + 32);
        assert!(cookie_key.ends_with(cookie.secret_hash.as_bytes()));
        assert_eq!(Slot::of(&token).unwrap().key("tessera:").len(), 8 + 4 + 16);
        // The times of a remembered session after a day of use: the
        // largest deltas a session of the default policy has.
        let used = |s: &Session| Session {
            last_seen_at: s.created_at + Duration::days(1),
            idle_expires_at: s.created_at + Duration::days(31),
            absolute_expires_at: s.created_at + Duration::days(30),
            ..s.clone()
        };
        let cookie_value = encode(&used(&cookie)).unwrap().len();
        let token_value = encode(&used(&token)).unwrap().len();
        assert!(cookie_value <= 56, "{cookie_value}");
        assert!(token_value <= 72, "{token_value}");
    }

    #[test]
    fn a_value_is_read_only_from_the_slot_of_its_kind() {
        let cookie = session(SessionKind::Cookie, false);
        let token = session(SessionKind::Token, false);
        assert_eq!(
            decode(&Slot::token(&cookie.id).unwrap(), &encode(&cookie).unwrap()),
            None
        );
        assert_eq!(
            decode(&Slot::Cookie(token.secret_hash), &encode(&token).unwrap()),
            None
        );
        // The same value under another hash answers with that hash: the key
        // is the secret's hash, the value never repeats it.
        let other = Secret::generate(SecretKind::Session).unwrap().hash();
        let moved = decode(&Slot::Cookie(other), &encode(&cookie).unwrap()).unwrap();
        assert_eq!(moved.secret_hash, other);
    }

    #[test]
    fn ids_that_were_not_generated_are_not_cached() {
        // 22 characters of the alphabet, but the last one carries bits past
        // the 16 bytes: no generated id ends so.
        let odd = SessionId::parse("AAAAAAAAAAAAAAAAAAAAAB").unwrap();
        assert!(Slot::token(&odd).is_none());
        let cookie = Session {
            id: odd,
            ..session(SessionKind::Cookie, false)
        };
        assert!(encode(&cookie).is_none());
    }

    #[test]
    fn corrupt_values_are_misses() {
        for s in all_kinds() {
            let slot = Slot::of(&s).unwrap();
            let value = encode(&s).unwrap();
            // Every truncation, including the empty tombstone.
            for len in 0..value.len() {
                assert_eq!(decode(&slot, &value[..len]), None, "{len}");
            }
            let mut padded = value.clone();
            padded.push(0);
            assert_eq!(decode(&slot, &padded), None);
            let mut future = value.clone();
            future[0] = VERSION + 1;
            assert_eq!(decode(&slot, &future), None);
            let mut flagged = value.clone();
            flagged[1] |= 0x80;
            assert_eq!(decode(&slot, &flagged), None);
        }
    }

    #[test]
    fn times_out_of_range_are_misses() {
        let s = session(SessionKind::Token, false);
        let slot = Slot::of(&s).unwrap();
        let head = &encode(&s).unwrap()[..2 + 16 + 32];
        let with_times = |times: &[u64]| {
            let mut v = head.to_vec();
            for &t in times {
                put_varint(&mut v, t);
            }
            v
        };
        assert!(decode(&slot, &with_times(&[0, 0, 0, 0])).is_some());
        // Past year 9999 for the time crate, or overflowing on the way there.
        assert_eq!(decode(&slot, &with_times(&[u64::MAX, 0, 0, 0])), None);
        assert_eq!(
            decode(&slot, &with_times(&[zigzag(i64::MAX), zigzag(1), 0, 0])),
            None
        );
        assert_eq!(
            decode(
                &slot,
                &with_times(&[0, zigzag(i64::MAX), zigzag(i64::MAX), 0])
            ),
            None
        );
        // Varints too long, or with bits past 64.
        let mut long = head.to_vec();
        long.extend_from_slice(&[0xff; 11]);
        assert_eq!(decode(&slot, &long), None);
        let mut wide = head.to_vec();
        wide.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        wide.extend_from_slice(&[0, 0, 0]);
        assert_eq!(decode(&slot, &wide), None);
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for n in [0, 1, 127, 128, 16_383, 16_384, u64::MAX / 2, u64::MAX] {
            let mut v = Vec::new();
            put_varint(&mut v, n);
            assert!(v.len() <= MAX_VARINT);
            let mut r = Reader(&v);
            assert_eq!(r.varint(), Some(n));
            assert!(r.0.is_empty());
        }
        for n in [0, 1, -1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // A fixed xorshift sequence: the same bytes on every run.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let cookie = Slot::Cookie(SecretHash::from_bytes([7; 32]));
        let token = Slot::token(&SessionId::generate().unwrap()).unwrap();
        let valid = encode(&session(SessionKind::Cookie, false)).unwrap();
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of them start like a real value, to get past the header.
            if next() % 2 == 0 && bytes.len() >= 2 {
                bytes[..2].copy_from_slice(&valid[..2]);
            }
            let _ = decode(&cookie, &bytes);
            let _ = decode(&token, &bytes);
        }
    }
}
