//! [`UserSessions`]: a user's sessions of both kinds — listing them, looking
//! one up, revoking one or all (by the user or an administrator).

use std::sync::Arc;

use uuid::Uuid;

use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::session::{Session, SessionId};
use crate::session_end::{Ending, SessionEnd};

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

    /// The user's live sessions, newest first.
    pub async fn list(&self, user_id: Uuid) -> Result<Vec<Session>, CoreError> {
        Ok(self
            .context
            .store()
            .list_user_sessions(user_id, self.context.now())
            .await?)
    }

    /// A session as stored (with the address and user agent the in-process
    /// cache does not keep).
    pub async fn get(&self, id: &SessionId) -> Result<Option<Session>, CoreError> {
        Ok(self.context.store().session_by_id(id).await?)
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
