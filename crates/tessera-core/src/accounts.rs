//! [`Accounts`]: users — registration and creation, password changes,
//! disabling, and lookups.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditKind};
use crate::authenticated::Authenticated;
use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::password::check_strength;
use crate::secret::{Secret, SecretKind};
use crate::session::{Session, SessionId, SessionKind};
use crate::session_end::{Ending, SessionEnd};
use crate::sign_in_guard::SignInGuard;
use crate::store::StoreError;
use crate::user::User;
use crate::username::Username;

/// The user accounts.
#[derive(Debug)]
pub struct Accounts {
    context: Arc<Context>,
    guard: Arc<SignInGuard>,
    session_end: Arc<SessionEnd>,
}

impl Accounts {
    /// Accounts over `context`, registrations and password checks through
    /// `guard`, sessions ended through `session_end`.
    pub fn new(
        context: Arc<Context>,
        guard: Arc<SignInGuard>,
        session_end: Arc<SessionEnd>,
    ) -> Self {
        Self {
            context,
            guard,
            session_end,
        }
    }

    /// Self-service registration, limited per client address.
    pub async fn register(
        &self,
        username: &str,
        password: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<User, CoreError> {
        self.guard.count_registration(client).await?;
        self.create_user(username, password, Vec::new(), client)
            .await
    }

    /// Creates a user with `roles` (registration, CLI, administration).
    pub async fn create_user(
        &self,
        username: &str,
        password: Zeroizing<String>,
        roles: Vec<String>,
        client: &ClientInfo,
    ) -> Result<User, CoreError> {
        let store = self.context.store();
        let username = Username::parse(username)?;
        check_strength(&password, username.display())?;
        // Registration reveals whether a name is taken by design; checking
        // first spares an Argon2 run. The unique index still decides races.
        if store
            .user_by_username(username.normalized())
            .await?
            .is_some()
        {
            return Err(CoreError::UsernameTaken);
        }
        let hash = self.context.hasher().hash(password).await?;
        let now = self.context.now();
        let user = User {
            id: Uuid::new_v4(),
            username,
            roles,
            disabled: false,
            created_at: now,
            updated_at: now,
            rendered: Default::default(),
        };
        match store.insert_user(&user, &hash).await {
            Ok(()) => {}
            Err(StoreError::Duplicate) => return Err(CoreError::UsernameTaken),
            Err(e) => return Err(e.into()),
        }
        self.context
            .audit(AuditKind::UserRegistered, Some(user.id), client, json!({}))
            .await?;
        Ok(user)
    }

    /// Changes the caller's password: checks the current one, revokes every
    /// other session, and rotates the current session's secret. Returns the
    /// new secret of a cookie session.
    pub async fn change_password(
        &self,
        auth: &Authenticated,
        current: Zeroizing<String>,
        new: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<Option<Secret>, CoreError> {
        let store = self.context.store();
        let record = store
            .user_by_id(auth.user.id)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        self.guard
            .check_current_password(&auth.user, record.password_hash, current, client)
            .await?;
        check_strength(&new, auth.user.username.display())?;
        let hash = self.context.hasher().hash(new).await?;
        let now = self.context.now();
        if !store.set_password_hash(auth.user.id, &hash, now).await? {
            return Err(CoreError::Unauthenticated);
        }
        self.session_end
            .end_user_sessions(
                auth.user.id,
                Some(&auth.session().id),
                client,
                Ending::Revoked("password_change"),
            )
            .await?;
        let rotated = match auth.session().kind {
            SessionKind::Cookie => {
                // A new session (new id, new secret, same lifetime) replaces
                // this one, whose end every node learns through the
                // revocation set, cached copies included.
                let secret = Secret::generate(SecretKind::Session)?;
                let (idle, _) = self
                    .context
                    .config()
                    .session
                    .lifetimes(auth.session().remember_me);
                let replacement = Session {
                    id: SessionId::generate()?,
                    secret_hash: secret.hash(),
                    last_seen_at: now,
                    idle_expires_at: (now + idle).min(auth.session().absolute_expires_at),
                    ip: client.ip,
                    user_agent: client.user_agent.clone(),
                    ..auth.session().clone()
                };
                // The replacement carries the password-change record; the
                // event of a token session's change is written below.
                let event = AuditEvent::new(
                    AuditKind::PasswordChanged,
                    Some(auth.user.id),
                    client,
                    now,
                    json!({ "session_id": replacement.id.as_str() }),
                );
                let current = &auth.session().id;
                let why = Ending::Revoked("password_change");
                let end = &self.session_end;
                if !store.insert_session(&replacement, &event, &hash).await? {
                    // Changed again, or disabled, meanwhile: this session
                    // goes the way of its peers.
                    end.end_session(current, client, why).await?;
                    return Err(CoreError::Unauthenticated);
                }
                event.log();
                if end.end_session(current, client, why).await?.is_none() {
                    // Ended meanwhile (signed out elsewhere): no replacement either.
                    end.end_session(&replacement.id, client, why).await?;
                    return Err(CoreError::Unauthenticated);
                }
                Some(secret)
            }
            SessionKind::Token => {
                self.context
                    .audit(
                        AuditKind::PasswordChanged,
                        Some(auth.user.id),
                        client,
                        json!({}),
                    )
                    .await?;
                None
            }
        };
        Ok(rotated)
    }

    /// Disables (revoking every session) or re-enables a user.
    pub async fn set_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        if !self
            .context
            .store()
            .set_disabled(user_id, disabled, self.context.now())
            .await?
        {
            return Err(CoreError::NotFound);
        }
        // This node's cached copy would let the user's bearer and cookie
        // lookups pass for up to a cache lifetime; other nodes refuse them
        // by the revocation set, and no sign-in racing this can store a
        // session (it must find the user enabled).
        self.context.cache().remove_user(user_id);
        if disabled {
            self.session_end
                .end_user_sessions(user_id, None, client, Ending::Revoked("admin_disable"))
                .await?;
        }
        let kind = if disabled {
            AuditKind::UserDisabled
        } else {
            AuditKind::UserEnabled
        };
        self.context
            .audit(kind, Some(user_id), client, json!({}))
            .await
    }

    /// A user by (not yet normalised) username.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, CoreError> {
        let name = Username::parse(username)?;
        Ok(self
            .context
            .store()
            .user_by_username(name.normalized())
            .await?
            .map(|r| r.user))
    }

    /// A user by id.
    pub async fn user(&self, id: Uuid) -> Result<Option<User>, CoreError> {
        Ok(self.context.store().user_by_id(id).await?.map(|r| r.user))
    }

    /// Users ordered by normalised name, after `after`, at most `limit`.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<User>, CoreError> {
        Ok(self.context.store().list_users(after, limit).await?)
    }
}
