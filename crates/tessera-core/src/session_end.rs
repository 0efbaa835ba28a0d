//! The one way a session ends. Sign-out, revocation by id or scope, a
//! password change, an administrator's disable, a token revocation, refresh
//! reuse, a sign-in replacing the browser's previous session: each deletes
//! the session in the store and then calls [`SessionEnd::ended`], which evicts
//! cached copies, puts the `sid` into the revocation set (here at once, on
//! every other node through the store) and audits the end. Nothing that ends
//! a session may skip a step, so nothing does it by hand.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditKind;
use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::revocation::RevocationKind;
use crate::revocations::Revocations;
use crate::session::{Session, SessionId};

/// Why sessions ended: decides what the audit log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The session's own user signed out.
    SignedOut,
    /// Revoked, by whom or what (`user`, `admin`, `password_change`,
    /// `admin_disable`, `token_revocation`, `sign_in`, `user_unavailable`).
    Revoked(&'static str),
    /// A replaced refresh token came back after the grace window (theft).
    RefreshReused,
}

impl Ending {
    /// The word for it in metrics (`tessera_revocations_total{reason}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::SignedOut => "signed_out",
            Ending::Revoked(by) => by,
            Ending::RefreshReused => "refresh_reused",
        }
    }
}

/// The one path by which sessions end.
#[derive(Debug)]
pub struct SessionEnd {
    context: Arc<Context>,
    revocations: Arc<Revocations>,
}

impl SessionEnd {
    /// Ends sessions over `context`, revoking them in `revocations`.
    pub fn new(context: Arc<Context>, revocations: Arc<Revocations>) -> Self {
        Self {
            context,
            revocations,
        }
    }

    /// Deletes one session and ends it; `None` if it was already gone.
    pub(crate) async fn end_session(
        &self,
        id: &SessionId,
        client: &ClientInfo,
        why: Ending,
    ) -> Result<Option<Session>, CoreError> {
        let ended = self.context.store().delete_session(id).await?;
        self.ended(ended.as_slice(), client, why).await?;
        Ok(ended)
    }

    /// Deletes and ends every session of `user_id` but `keep`; how many ended.
    pub(crate) async fn end_user_sessions(
        &self,
        user_id: Uuid,
        keep: Option<&SessionId>,
        client: &ClientInfo,
        why: Ending,
    ) -> Result<usize, CoreError> {
        let ended = self
            .context
            .store()
            .delete_user_sessions(user_id, keep)
            .await?;
        self.ended(&ended, client, why).await?;
        Ok(ended.len())
    }

    /// What follows the store's deletion of `sessions`, whichever way they
    /// ended: no cached copy, no access token and no other node may accept
    /// them from here on, and the log says so.
    pub(crate) async fn ended(
        &self,
        sessions: &[Session],
        client: &ClientInfo,
        why: Ending,
    ) -> Result<(), CoreError> {
        if sessions.is_empty() {
            return Ok(());
        }
        for session in sessions {
            self.context.cache().remove(session);
        }
        // Long enough for the last access token and any cached copy.
        let until = self.context.now() + self.context.config().tokens.revocation_ttl();
        let entries: Vec<_> = sessions
            .iter()
            .map(|s| (RevocationKind::Sid, s.id.as_str().to_owned(), until))
            .collect();
        self.revocations.revoke(entries, why.as_str()).await?;
        for session in sessions {
            let (id, kind) = (session.id.as_str(), session.kind.as_str());
            let (event, detail) = match why {
                Ending::SignedOut => (
                    AuditKind::SignedOut,
                    json!({ "session_id": id, "kind": kind }),
                ),
                Ending::Revoked(by) => (
                    AuditKind::SessionRevoked,
                    json!({ "session_id": id, "kind": kind, "by": by }),
                ),
                Ending::RefreshReused => (
                    AuditKind::RefreshReused,
                    json!({ "session_id": id, "kind": kind }),
                ),
            };
            self.context
                .audit(event, Some(session.user_id), client, detail)
                .await?;
        }
        Ok(())
    }
}
