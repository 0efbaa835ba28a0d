//! [`TokenSessions`]: OAuth token sessions — the password and refresh
//! grants, bearer authentication, and revocation and introspection of
//! tokens. Access tokens are signed and checked with [`SigningKeys`].

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditKind};
use crate::auth_methods::{AuthMethod, AuthMethods};
use crate::authenticated::Authenticated;
use crate::client::ClientInfo;
use crate::context::Context;
use crate::error::CoreError;
use crate::jwt::{self, AccessClaims, TokenError};
use crate::metrics::{CacheKind, RefreshOutcome};
use crate::mfa::MfaNext;
use crate::mfa_sign_in::{Completed, MfaSignIn};
use crate::oauth_client::OAuthClient;
use crate::passkeys::PasskeyProof;
use crate::revocation::RevocationKind;
use crate::revocations::Revocations;
use crate::secret::{Secret, SecretKind};
use crate::session::{Session, SessionId, SessionKind};
use crate::session_end::{Ending, SessionEnd};
use crate::sign_in_guard::{Checked, SignInGuard};
use crate::signing_keys::SigningKeys;
use crate::store::{Presented, Rotation, StoreError, WrongClient};
use crate::user::{User, UserRecord};

/// An access token and a refresh token for one token session.
#[derive(Debug)]
pub struct TokenGrant {
    /// The signed JWT.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The session's new current refresh token; only its hash is stored.
    pub refresh_token: Secret,
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
}

/// What introspection found (RFC 7662).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// Not a token this server would accept now.
    Inactive,
    /// A valid access token.
    Access(AccessClaims),
    /// A current refresh token of a live session.
    Refresh {
        /// Its session.
        session: Session,
        /// The session's user.
        user: User,
    },
}

/// Token sessions.
#[derive(Debug)]
pub struct TokenSessions {
    context: Arc<Context>,
    guard: Arc<SignInGuard>,
    session_end: Arc<SessionEnd>,
    revocations: Arc<Revocations>,
    keys: Arc<SigningKeys>,
    mfa: Arc<MfaSignIn>,
}

impl TokenSessions {
    /// Token sessions over `context`: passwords checked through `guard`,
    /// sessions ended through `session_end`, tokens checked against
    /// `revocations` and signed with `keys`; sign-ins of users with a
    /// second factor go on through `mfa`.
    pub fn new(
        context: Arc<Context>,
        guard: Arc<SignInGuard>,
        session_end: Arc<SessionEnd>,
        revocations: Arc<Revocations>,
        keys: Arc<SigningKeys>,
        mfa: Arc<MfaSignIn>,
    ) -> Self {
        Self {
            context,
            guard,
            session_end,
            revocations,
            keys,
            mfa,
        }
    }

    /// `grant_type=password`: checks the password and starts a token session.
    pub async fn sign_in(
        &self,
        username: &str,
        password: Zeroizing<String>,
        client: &ClientInfo,
    ) -> Result<TokenGrant, CoreError> {
        let Checked { record, mfa } = self
            .guard
            .check_credentials(username, password, client)
            .await?;
        if mfa.required() {
            let token = self
                .mfa
                .challenge(
                    &record.user,
                    &record.password_hash,
                    AuthMethods::PASSWORD,
                    MfaNext::Token,
                    client,
                )
                .await?;
            return Err(CoreError::MfaRequired(Box::new(token)));
        }
        let UserRecord {
            user,
            password_hash,
        } = record;
        self.start(user, &password_hash, AuthMethods::PASSWORD, client, None)
            .await?
            .ok_or(CoreError::InvalidCredentials)
    }

    /// `grant_type=urn:tessera:grant-type:mfa`: finishes a password grant
    /// that stopped for its second factor ([`CoreError::MfaRequired`]),
    /// with `mfa_token` and a TOTP or recovery `code` from the same address.
    pub async fn complete_mfa(
        &self,
        mfa_token: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<TokenGrant, CoreError> {
        let done = self
            .mfa
            .complete_with_code(mfa_token, SessionKind::Token, code, client)
            .await?;
        self.finish(done, client).await
    }

    /// Starts the token session of a sign-in completed by
    /// [`MfaSignIn::complete`] (whatever proved the second factor).
    pub async fn finish(
        &self,
        done: Completed,
        client: &ClientInfo,
    ) -> Result<TokenGrant, CoreError> {
        if done.next != MfaNext::Token {
            return Err(CoreError::InvalidMfaToken);
        }
        let UserRecord {
            user,
            password_hash,
        } = done.record;
        self.start(user, &password_hash, done.amr, client, None)
            .await?
            .ok_or(CoreError::InvalidCredentials)
    }

    /// Starts a token session for a user a passkey proved (a first-party
    /// client, as for the password grant).
    pub async fn sign_in_with_passkey(
        &self,
        proof: PasskeyProof,
        client: &ClientInfo,
    ) -> Result<TokenGrant, CoreError> {
        let UserRecord {
            user,
            password_hash,
        } = proof.record;
        let amr = AuthMethods::NONE.with(AuthMethod::HardwareKey);
        self.start(user, &password_hash, amr, client, None)
            .await?
            .ok_or(CoreError::PasskeyNotAccepted)
    }

    /// Starts a token session for `user`, on the condition that the user
    /// is enabled and still has `password_hash` (see
    /// [`crate::store::RefreshTokens::insert_token_session`]); `None` when
    /// that changed meanwhile. A session for an OAuth client (`for_client`:
    /// its id and the granted scope) is linked to it, and its access tokens
    /// carry both.
    pub(crate) async fn start(
        &self,
        user: User,
        password_hash: &str,
        amr: AuthMethods,
        client: &ClientInfo,
        for_client: Option<(Uuid, &str)>,
    ) -> Result<Option<TokenGrant>, CoreError> {
        let policy = &self.context.config().tokens;
        let refresh = Secret::generate(SecretKind::Refresh)?;
        let now = self.context.now();
        let absolute = now + policy.refresh_absolute_ttl;
        let session = Session {
            id: SessionId::generate()?,
            kind: SessionKind::Token,
            user_id: user.id,
            secret_hash: refresh.hash(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: (now + policy.refresh_idle_ttl).min(absolute),
            absolute_expires_at: absolute,
            remember_me: false,
            amr,
            ip: client.ip,
            user_agent: client.user_agent.clone(),
        };
        let detail = match for_client {
            Some((client_id, _)) => {
                json!({ "session_id": session.id.as_str(), "kind": "token", "amr": amr.amr(), "client_id": client_id })
            }
            None => json!({ "session_id": session.id.as_str(), "kind": "token", "amr": amr.amr() }),
        };
        let event = AuditEvent::new(
            AuditKind::SignInSucceeded,
            Some(user.id),
            client,
            now,
            detail,
        );
        if !self
            .context
            .store()
            .insert_token_session(&session, &event, password_hash)
            .await?
        {
            // Password changed or user disabled while this was checked.
            return Ok(None);
        }
        event.log();
        self.context.metrics().session_created(SessionKind::Token);
        if let Some((client_id, scope)) = for_client
            && let Err(e) = self
                .context
                .store()
                .link_client_session(&session.id, client_id, scope)
                .await
        {
            // Never a client's session without its link (it would escape
            // the client's removal): the session goes.
            self.session_end
                .end_session(&session.id, client, Ending::Revoked("client_link_failed"))
                .await?;
            return Err(e.into());
        }
        let for_client = for_client.map(|(id, scope)| (id.to_string(), scope.to_owned()));
        self.grant(user, session, refresh, for_client).map(Some)
    }

    /// `grant_type=refresh_token`: exchanges a refresh token for a new pair.
    /// A token replaced longer ago than the grace window is taken as stolen:
    /// its whole session is revoked. `by` is the client the request
    /// authenticated as, if any: a refresh token is bound to the client it
    /// was issued to ([`crate::store::check_presenter`]), and a token presented by a
    /// client it is not for is refused before it could be spent or revoke
    /// anything (in the same store transaction as the exchange).
    pub async fn refresh(
        &self,
        presented: &str,
        by: Option<&OAuthClient>,
        client: &ClientInfo,
    ) -> Result<TokenGrant, CoreError> {
        let metrics = self.context.metrics();
        let invalid =
            || CoreError::InvalidGrant("the refresh token is invalid, expired or revoked".into());
        let Some(presented) = Secret::parse(SecretKind::Refresh, presented) else {
            metrics.refresh(RefreshOutcome::Invalid);
            return Err(invalid());
        };
        let fresh = Secret::generate(SecretKind::Refresh)?;
        let policy = &self.context.config().tokens;
        let outcome = self
            .context
            .store()
            .rotate_refresh(
                &presented.hash(),
                &fresh.hash(),
                by.map(|c| c.id),
                self.context.now(),
                policy.refresh_reuse_grace,
                policy.refresh_idle_ttl,
            )
            .await?;
        match outcome {
            Rotation::Rotated(session, presented, holder) => {
                match self.context.live_user(session.user_id).await {
                    Ok(user) => {
                        // A client's session keeps its client and scope in
                        // every access token.
                        let for_client = holder.map(|h| (h.client_id.to_string(), h.scope));
                        let grant =
                            self.grant(user.as_ref().clone(), session, fresh, for_client)?;
                        metrics.refresh(match presented {
                            Presented::Current => RefreshOutcome::Ok,
                            Presented::WithinGrace => RefreshOutcome::GraceReuse,
                        });
                        Ok(grant)
                    }
                    Err(CoreError::Unauthenticated) => {
                        // The user was disabled or deleted meanwhile.
                        self.session_end
                            .end_session(&session.id, client, Ending::Revoked("user_unavailable"))
                            .await?;
                        metrics.refresh(RefreshOutcome::Invalid);
                        Err(invalid())
                    }
                    Err(e) => Err(e),
                }
            }
            Rotation::Reused(session) => {
                metrics.refresh(RefreshOutcome::ReuseDetected);
                // The store deleted it in the same transaction that saw the reuse.
                self.session_end
                    .ended(
                        std::slice::from_ref(&session),
                        client,
                        Ending::RefreshReused,
                    )
                    .await?;
                Err(invalid())
            }
            Rotation::Expired | Rotation::Unknown => {
                metrics.refresh(RefreshOutcome::Invalid);
                Err(invalid())
            }
            // Not an exchange attempt at all: the token is no business of
            // this client's.
            Rotation::WrongClient(WrongClient::Unauthenticated) => Err(CoreError::InvalidClient),
            Rotation::WrongClient(WrongClient::Other) => Err(CoreError::InvalidGrant(
                "the refresh token was issued to another client".into(),
            )),
        }
    }

    fn grant(
        &self,
        user: User,
        session: Session,
        refresh: Secret,
        for_client: Option<(String, String)>,
    ) -> Result<TokenGrant, CoreError> {
        let mut claims = jwt::new_claims(
            &self.context.config().tokens,
            user.id,
            session.id.as_str(),
            user.roles.clone(),
            self.context.now(),
        )?;
        claims.amr = session.amr.amr();
        if let Some((client_id, scope)) = for_client {
            claims.client_id = Some(client_id);
            claims.scope = Some(scope);
        }
        let access_token = jwt::mint(&self.keys.keyring(), &claims)?;
        Ok(TokenGrant {
            access_token,
            expires_in: claims.exp - claims.iat,
            refresh_token: refresh,
            session,
            user,
        })
    }

    /// Verifies an access token (signature, claims, revocation) and finds
    /// its live session and user.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, CoreError> {
        let claims = self.verify_access_token(token).await.map_err(|e| match e {
            TokenError::Stale => CoreError::Store(StoreError::Unavailable(
                "the revocation set cannot be brought up to date".into(),
            )),
            other => {
                tracing::debug!(reason = %other, "bearer token refused");
                CoreError::Unauthenticated
            }
        })?;
        let session_id = SessionId::parse(&claims.sid).ok_or(CoreError::Unauthenticated)?;
        // The token passed the revocation check, so a cached copy of its
        // session is still current.
        let cached = self.context.cache().token(&session_id);
        self.context
            .metrics()
            .cache_lookup(CacheKind::Session, cached.is_some());
        let sub = Uuid::parse_str(&claims.sub).ok();
        let client_id = claims.client_id.clone();
        if let Some((session, secret_hash)) = cached {
            if sub != Some(session.user_id()) {
                return Err(CoreError::Unauthenticated);
            }
            let user = self.context.live_user(session.user_id()).await?;
            return Ok(Authenticated::cached(
                user,
                session,
                SessionKind::Token,
                secret_hash,
                client_id,
            ));
        }
        let session = match self.context.store().session_by_id(&session_id).await? {
            Some(s) if s.kind == SessionKind::Token && s.is_live(self.context.now()) => {
                self.context.cache().put(&s);
                s
            }
            _ => return Err(CoreError::Unauthenticated),
        };
        if sub != Some(session.user_id) {
            return Err(CoreError::Unauthenticated);
        }
        let user = self.context.live_user(session.user_id).await?;
        Ok(Authenticated::new(user, session, client_id))
    }

    /// Signature and claims, then the revocation set. An unknown `kid` makes
    /// the node reload its keys (at most once a second) in case another
    /// node has rotated them.
    pub async fn verify_access_token(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        let claims = self.keys.verify(token, self.context.now()).await?;
        // Never cached: checked on every request.
        if self.revocations.fresh().is_err() {
            return Err(TokenError::Stale);
        }
        if self.revocations.set().is_revoked(&claims.sid, &claims.jti) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// RFC 7009: revokes the session of a refresh or access token. Anything
    /// else is silently ignored, and so is a token that can do no harm any
    /// more (expired, or its session already revoked): anyone may call
    /// this, so a call writes only when it ends something.
    pub async fn revoke_token(&self, token: &str, client: &ClientInfo) -> Result<(), CoreError> {
        let why = Ending::Revoked("token_revocation");
        if let Some(refresh) = Secret::parse(SecretKind::Refresh, token) {
            if let Some((session, _)) = self
                .context
                .store()
                .session_by_refresh(&refresh.hash())
                .await?
            {
                self.session_end
                    .end_session(&session.id, client, why)
                    .await?;
            }
            return Ok(());
        }
        let Ok(claims) =
            jwt::verify_ignoring_expiry(&self.keys.keyring(), &self.context.config().tokens, token)
        else {
            return Ok(());
        };
        let leeway = self.context.config().tokens.leeway.whole_seconds();
        if claims.exp.saturating_add(leeway) < self.context.now().unix_timestamp()
            || self.revocations.set().is_revoked(&claims.sid, &claims.jti)
        {
            return Ok(());
        }
        let ended = match SessionId::parse(&claims.sid) {
            Some(id) => self.session_end.end_session(&id, client, why).await?,
            None => None,
        };
        if ended.is_none() {
            // The session is gone (it expired) while its token still lives:
            // its sid goes into the set, once.
            let until = self.context.now() + self.context.config().tokens.revocation_ttl();
            self.revocations
                .revoke(
                    vec![(RevocationKind::Sid, claims.sid.clone(), until)],
                    "token_revocation",
                )
                .await?;
        }
        Ok(())
    }

    /// RFC 7662 introspection of an access or refresh token.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, CoreError> {
        if let Some(refresh) = Secret::parse(SecretKind::Refresh, token) {
            return Ok(
                match self
                    .context
                    .store()
                    .session_by_refresh(&refresh.hash())
                    .await?
                {
                    Some((session, true)) if session.is_live(self.context.now()) => {
                        match self.context.live_user(session.user_id).await {
                            Ok(user) => Introspection::Refresh {
                                session,
                                user: user.as_ref().clone(),
                            },
                            Err(_) => Introspection::Inactive,
                        }
                    }
                    _ => Introspection::Inactive,
                },
            );
        }
        Ok(match self.verify_access_token(token).await {
            Ok(claims) => Introspection::Access(claims.as_ref().clone()),
            Err(TokenError::Stale) => {
                return Err(CoreError::Store(StoreError::Unavailable(
                    "the revocation set cannot be brought up to date".into(),
                )));
            }
            Err(_) => Introspection::Inactive,
        })
    }
}
