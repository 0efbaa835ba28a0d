//! [`UserSessions`]: a user's sessions of both kinds — listing them (with
//! the OAuth client holding each, if any), looking one up, revoking one or
//! all (by the user or an administrator).

use std::sync::Arc;

use uuid::Uuid;

use crate::client::ClientInfo;
use crate::consent::ClientSession;
use crate::context::Context;
use crate::error::CoreError;
use crate::session::{Session, SessionId, SessionKind};
use crate::session_end::{Ending, SessionEnd};

/// A live session as its user's list shows it.
#[derive(Debug, Clone)]
pub struct ListedSession {
    /// The session.
    pub session: Session,
    /// The OAuth client holding it, for a session the authorization-code
    /// flow created.
    pub client: Option<ClientSession>,
}

/// A user's sessions.
#[derive(Debug)]
pub struct UserSessions {
    context: Arc<Context>,
    session_end: Arc<SessionEnd>,
}

impl UserSessions {
    /// Sessions over `context`, ended through `session_end`.
    pub fn new(context: Arc<Context>, session_end: Arc<SessionEnd>) -> Self {
        Self {
            context,
            session_end,
        }
    }

    /// The user's live sessions, newest first, each with the OAuth client
    /// holding it (sessions the authorization-code flow created).
    pub async fn list(&self, user_id: Uuid) -> Result<Vec<ListedSession>, CoreError> {
        let store = self.context.store();
        let sessions = store
            .list_user_sessions(user_id, self.context.now())
            .await?;
        // Only token sessions are ever held by a client: a user with none
        // costs no second read.
        let mut held = if sessions.iter().any(|s| s.kind == SessionKind::Token) {
            store.client_sessions_of_user(user_id).await?
        } else {
            Vec::new()
        };
        Ok(sessions
            .into_iter()
            .map(|session| {
                let client = held
                    .iter()
                    .position(|c| c.session_id == session.id)
                    .map(|i| held.swap_remove(i));
                ListedSession { session, client }
            })
            .collect())
    }

    /// A session as stored, with the address and user agent that neither
    /// the in-process cache nor the Redis cache keeps.
    pub async fn get(&self, id: &SessionId) -> Result<Option<Session>, CoreError> {
        Ok(self.context.store().stored_session(id).await?)
    }

    /// Revokes one of the user's sessions; [`CoreError::NotFound`] when it is
    /// not theirs, exactly as when it does not exist.
    pub async fn revoke(
        &self,
        user_id: Uuid,
        id: &str,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        let id = SessionId::parse(id).ok_or(CoreError::NotFound)?;
        match self.context.store().session_by_id(&id).await? {
            Some(session) if session.user_id == user_id => {}
            _ => return Err(CoreError::NotFound),
        }
        self.session_end
            .end_session(&id, client, Ending::Revoked("user"))
            .await?;
        Ok(())
    }

    /// Revokes every session of the user except `keep`, `by` whom (`user`,
    /// `admin`); returns how many ended.
    pub async fn revoke_all(
        &self,
        user_id: Uuid,
        keep: Option<&SessionId>,
        client: &ClientInfo,
        by: &'static str,
    ) -> Result<usize, CoreError> {
        self.session_end
            .end_user_sessions(user_id, keep, client, Ending::Revoked(by))
            .await
    }
}
