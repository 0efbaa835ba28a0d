//! A session as the in-process cache keeps it: what authentication needs,
//! in a fixed-size copyable form (no IP or user agent, times as Unix
//! milliseconds). A request checks it as it is; the full [`Session`] is
//! built only when a handler reads it ([`crate::authenticated`]).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth_methods::AuthMethods;
use crate::revocation::{ID_BYTES, compact};
use crate::secret::SecretHash;
use crate::session::{Session, SessionId, SessionKind};
use crate::store::{from_millis, to_millis};

/// The compact copy of a session. Made only from a valid [`Session`], so
/// its times are in range; its id kept as the bytes it encodes (the form
/// the revocation set looks ids up in, and smaller than the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactSession {
    id: [u8; ID_BYTES],
    remember_me: bool,
    amr: AuthMethods,
    user_id: Uuid,
    created_at_ms: i64,
    last_seen_at_ms: i64,
    idle_expires_at_ms: i64,
    absolute_expires_at_ms: i64,
}

impl CompactSession {
    /// The compact copy of `session`; `None` for an id of another shape
    /// than the canonical base64url of 16 bytes (never one this server made).
    pub fn new(session: &Session) -> Option<Self> {
        Some(Self {
            id: compact(session.id.as_str())?,
            remember_me: session.remember_me,
            amr: session.amr,
            user_id: session.user_id,
            created_at_ms: to_millis(session.created_at),
            last_seen_at_ms: to_millis(session.last_seen_at),
            idle_expires_at_ms: to_millis(session.idle_expires_at),
            absolute_expires_at_ms: to_millis(session.absolute_expires_at),
        })
    }

    /// The bytes the id encodes.
    pub fn id_bytes(&self) -> &[u8; ID_BYTES] {
        &self.id
    }

    /// Whose session it is.
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// Whether the user asked to be remembered.
    pub fn remember_me(&self) -> bool {
        self.remember_me
    }

    /// When it was last used, in Unix milliseconds.
    pub fn last_seen_at_ms(&self) -> i64 {
        self.last_seen_at_ms
    }

    /// Marks the session seen at `now_ms` (a use being written down).
    pub(crate) fn mark_seen_at(&mut self, now_ms: i64) {
        self.last_seen_at_ms = now_ms;
    }

    /// When it stops being valid unless used again, in Unix milliseconds.
    pub fn expires_at_ms(&self) -> i64 {
        self.idle_expires_at_ms.min(self.absolute_expires_at_ms)
    }

    /// Whether it is still valid at `now_ms` (Unix milliseconds): numbers
    /// compared, no calendar.
    pub fn is_live_at(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms()
    }

    /// The session back (without IP and user agent, which are not kept).
    pub fn session(&self, kind: SessionKind, secret_hash: SecretHash) -> Session {
        Session {
            id: SessionId::encoding(&self.id),
            kind,
            user_id: self.user_id,
            secret_hash,
            created_at: time_of(self.created_at_ms),
            last_seen_at: time_of(self.last_seen_at_ms),
            idle_expires_at: time_of(self.idle_expires_at_ms),
            absolute_expires_at: time_of(self.absolute_expires_at_ms),
            remember_me: self.remember_me,
            amr: self.amr,
            ip: None,
            user_agent: None,
        }
    }
}

/// A kept time back. Every kept time was read from a valid one, so the
/// fallback is never taken; were it taken, the epoch errs safe in every
/// field (expired, signed in long ago, last seen long ago).
fn time_of(ms: i64) -> OffsetDateTime {
    from_millis(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_back_all_but_the_client_details() {
        // Every time distinct, so that none can stand in for another.
        let mut original = Session::sample(SessionKind::Cookie);
        original.last_seen_at = original.created_at + time::Duration::seconds(1);
        let cached = CompactSession::new(&original).unwrap_or_else(|| unreachable!());
        assert_eq!(
            cached.session(original.kind, original.secret_hash),
            Session {
                ip: None,
                user_agent: None,
                ..original.clone()
            }
        );
        assert_eq!(
            cached.id_bytes(),
            &compact(original.id.as_str()).unwrap_or_default()
        );
        assert_eq!(cached.user_id(), original.user_id);
        assert!(cached.remember_me());
        assert_eq!(cached.last_seen_at_ms(), to_millis(original.last_seen_at));
    }

    #[test]
    fn is_live_until_the_first_of_its_two_ends() {
        let mut idle_first = Session::sample(SessionKind::Cookie);
        idle_first.idle_expires_at = idle_first.created_at + time::Duration::milliseconds(5);
        let mut absolute_first = Session::sample(SessionKind::Cookie);
        absolute_first.idle_expires_at =
            absolute_first.absolute_expires_at + time::Duration::hours(1);
        for original in [idle_first, absolute_first] {
            let cached = CompactSession::new(&original).unwrap_or_else(|| unreachable!());
            let end = to_millis(original.expires_at());
            assert_eq!(cached.expires_at_ms(), end);
            assert!(cached.is_live_at(end - 1));
            assert!(!cached.is_live_at(end));
        }
    }

    #[test]
    fn only_ids_of_the_generated_shape_are_kept() {
        // A valid id's alphabet and length, with a non-canonical last
        // character (unused bits set): kept out, so the store answers.
        let mut odd = Session::sample(SessionKind::Cookie);
        odd.id = SessionId::parse("AAAAAAAAAAAAAAAAAAAAAB").unwrap_or_else(|| unreachable!());
        assert!(CompactSession::new(&odd).is_none());
    }
}
