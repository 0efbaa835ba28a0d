//! A request's proven identity: its live session and the session's user.
//!
//! Most signed-in requests never read their session (`GET /v1/me` answers
//! the user): one answered from the in-process cache carries the cache's
//! compact copy, and the full [`Session`] is built the first time a handler
//! asks for it (four calendar conversions and an allocation saved on every
//! other request).

use std::sync::{Arc, OnceLock};

use crate::compact_session::CompactSession;
use crate::secret::SecretHash;
use crate::session::{Session, SessionKind};
use crate::user::User;

/// A request's proven identity: a live session and its user.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user (shared with the cache: no copy per request).
    pub user: Arc<User>,
    /// The OAuth client a bearer token was issued to by the authorization-code
    /// flow (its `client_id` claim); `None` for cookies and password-grant
    /// tokens.
    pub client_id: Option<String>,
    /// Boxed: this value is moved through every layer of a request's
    /// extractors, and a box is cheaper to move.
    session: Box<SessionSlot>,
}

/// The session, as read from the store or as the cache keeps it.
#[derive(Debug, Clone)]
enum SessionSlot {
    Read(Session),
    Cached {
        session: CompactSession,
        kind: SessionKind,
        secret_hash: SecretHash,
        built: OnceLock<Session>,
    },
}

impl Authenticated {
    /// The identity of a session read from the store (or just changed).
    pub fn new(user: Arc<User>, session: Session, client_id: Option<String>) -> Self {
        Self {
            user,
            client_id,
            session: Box::new(SessionSlot::Read(session)),
        }
    }

    /// The identity of a session answered from the cache: `kind` and
    /// `secret_hash` are what the cache keys it by.
    pub fn cached(
        user: Arc<User>,
        session: CompactSession,
        kind: SessionKind,
        secret_hash: SecretHash,
        client_id: Option<String>,
    ) -> Self {
        Self {
            user,
            client_id,
            session: Box::new(SessionSlot::Cached {
                session,
                kind,
                secret_hash,
                built: OnceLock::new(),
            }),
        }
    }

    /// The session the request belongs to.
    pub fn session(&self) -> &Session {
        match &*self.session {
            SessionSlot::Read(session) => session,
            SessionSlot::Cached {
                session,
                kind,
                secret_hash,
                built,
            } => built.get_or_init(|| session.session(*kind, *secret_hash)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn user() -> Arc<User> {
        Arc::new(User {
            id: uuid::Uuid::new_v4(),
            username: crate::username::Username::parse("alice").unwrap_or_else(|_| unreachable!()),
            roles: Vec::new(),
            disabled: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            rendered: Default::default(),
        })
    }

    #[test]
    fn a_cached_identity_reads_the_session_it_was_made_from() {
        for kind in [SessionKind::Cookie, SessionKind::Token] {
            let original = Session {
                ip: None,
                user_agent: None,
                ..Session::sample(kind)
            };
            let compact = CompactSession::new(&original).unwrap_or_else(|| unreachable!());
            let read = Authenticated::new(user(), original.clone(), None);
            let cached = Authenticated::cached(user(), compact, kind, original.secret_hash, None);
            assert_eq!(read.session(), &original);
            assert_eq!(cached.session(), &original);
            // Built once: the same value on every read, and in a clone.
            assert!(std::ptr::eq(cached.session(), cached.session()));
            assert_eq!(cached.clone().session(), &original);
        }
    }
}
