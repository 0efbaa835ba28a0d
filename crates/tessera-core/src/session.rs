//! Sessions: one signed-in device or client, whichever carrier it uses.
//!
//! A cookie session's secret is the cookie value; a token session's secret is
//! its current refresh token. Both kinds are stored, listed, expired and
//! revoked alike.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::auth_methods::AuthMethods;
use crate::secret::{RandomError, SecretHash, random_token};

/// The public identifier of a session: random, safe to show, useless as a
/// credential. It is the JWT `sid` of a token session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// A new random id (128 bits, base64url).
    pub fn generate() -> Result<Self, RandomError> {
        random_token(16).map(Self)
    }

    /// Accepts an id from a request or the store. Only the alphabet and
    /// length of generated ids pass, so anything else is a plain "not found".
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = raw.len() == 22
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| Self(raw.to_owned()))
    }

    /// The id whose text is the base64url of `bytes` (an id a cache kept
    /// as the bytes it encodes).
    pub(crate) fn encoding(bytes: &[u8; crate::revocation::ID_BYTES]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the session's holder proves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A browser with a session cookie.
    Cookie,
    /// A client holding access and refresh tokens.
    Token,
}

impl SessionKind {
    /// The stable name used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Cookie => "cookie",
            SessionKind::Token => "token",
        }
    }

    /// Reads the stored name back.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "cookie" => Some(SessionKind::Cookie),
            "token" => Some(SessionKind::Token),
            _ => None,
        }
    }
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id.
    pub id: SessionId,
    /// Cookie or token.
    pub kind: SessionKind,
    /// Whose session it is.
    pub user_id: Uuid,
    /// SHA-256 of the current secret.
    pub secret_hash: SecretHash,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was last used (written at most once per touch interval).
    pub last_seen_at: OffsetDateTime,
    /// When it dies if not used again.
    pub idle_expires_at: OffsetDateTime,
    /// When it dies whatever happens.
    pub absolute_expires_at: OffsetDateTime,
    /// Whether the user asked to be remembered.
    pub remember_me: bool,
    /// How the user proved who they are (`amr`).
    pub amr: AuthMethods,
    /// Client address at creation.
    pub ip: Option<IpAddr>,
    /// Client user agent at creation.
    pub user_agent: Option<String>,
}

impl Session {
    /// The moment the session stops being valid, unless it is used again.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.idle_expires_at.min(self.absolute_expires_at)
    }

    /// Whether the session is still valid at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at()
    }
}

/// Lifetimes of cookie sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused for this long expires.
    pub idle_timeout: Duration,
    /// A session expires this long after sign-in, however active.
    pub absolute_timeout: Duration,
    /// Idle and absolute lifetime of a "remember me" session.
    pub remember_me_timeout: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::minutes(30),
            absolute_timeout: Duration::hours(12),
            remember_me_timeout: Duration::days(30),
        }
    }
}

impl SessionPolicy {
    /// Idle and absolute lifetimes for a new session.
    pub fn lifetimes(&self, remember_me: bool) -> (Duration, Duration) {
        if remember_me {
            (self.remember_me_timeout, self.remember_me_timeout)
        } else {
            (self.idle_timeout, self.absolute_timeout)
        }
    }

    /// How stale `last_seen_at` may get before it is written again: at most
    /// a minute, so reads stay cheap, and never more than half the idle
    /// timeout, so an active session never idles out between writes.
    pub fn touch_interval(&self, idle: Duration) -> Duration {
        let half: Duration = idle / 2;
        half.min(Duration::minutes(1))
    }
}

#[cfg(test)]
impl Session {
    /// A live session for tests: times to the millisecond (as caches keep
    /// them), a fresh secret hash, client details set.
    pub(crate) fn sample(kind: SessionKind) -> Self {
        let now = OffsetDateTime::now_utc();
        let now = now.replace_millisecond(now.millisecond()).unwrap_or(now);
        Session {
            id: SessionId::generate().unwrap_or_else(|_| unreachable!()),
            kind,
            user_id: Uuid::new_v4(),
            secret_hash: crate::secret::Secret::generate(crate::secret::SecretKind::Session)
                .unwrap_or_else(|_| unreachable!())
                .hash(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now + Duration::minutes(30),
            absolute_expires_at: now + Duration::hours(12),
            remember_me: true,
            amr: AuthMethods::PASSWORD,
            ip: Some(IpAddr::from([127, 0, 0, 1])),
            user_agent: Some("x".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_parse_only_their_own_shape() -> Result<(), RandomError> {
        let id = SessionId::generate()?;
        assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(SessionId::parse("short"), None);
        assert_eq!(SessionId::parse("../../../../etc/passwd"), None);
        assert_eq!(SessionId::parse("aaaaaaaaaaaaaaaaaaaaa'"), None);
        Ok(())
    }

    #[test]
    fn touch_interval_is_bounded_by_a_minute_and_half_the_idle_timeout() {
        let policy = SessionPolicy::default();
        assert_eq!(
            policy.touch_interval(Duration::minutes(30)),
            Duration::minutes(1)
        );
        assert_eq!(
            policy.touch_interval(Duration::seconds(4)),
            Duration::seconds(2)
        );
    }

    #[test]
    fn remember_me_uses_its_own_lifetime() {
        let policy = SessionPolicy::default();
        assert_eq!(
            policy.lifetimes(false),
            (Duration::minutes(30), Duration::hours(12))
        );
        assert_eq!(
            policy.lifetimes(true),
            (Duration::days(30), Duration::days(30))
        );
    }
}
