//! [`CookieSessions`]: browser sign-in with a cookie — sign-in, the cookie
//! check of every request, the CSRF token, sign-out.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditKind};
use crate::auth_methods::{AuthMethod, AuthMethods};
use crate::authenticated::Authenticated;
use crate::client::ClientInfo;
use crate::compact_session::CompactSession;
use crate::context::Context;
use crate::error::CoreError;
use crate::metrics::CacheKind;
use crate::mfa::MfaNext;
use crate::mfa_sign_in::{Completed, MfaSignIn};
use crate::passkeys::PasskeyProof;
use crate::revocations::Revocations;
use crate::secret::{Secret, SecretHash, SecretKind};
use crate::session::{Session, SessionId, SessionKind};
use crate::session_end::{Ending, SessionEnd};
use crate::sign_in_guard::{Checked, SignInGuard};
use crate::store::to_millis;
use crate::user::{User, UserRecord};

/// Label under which a session's CSRF token is derived from its secret.
const CSRF_LABEL: &[u8] = b"tessera csrf v1";

/// A new session and the secret that proves it, returned once.
#[derive(Debug)]
pub struct SignedIn {
    /// The signed-in user.
    pub user: User,
    /// The new session.
    pub session: Session,
    /// Its secret (the cookie value); only its hash is stored.
    pub secret: Secret,
}

/// Cookie sessions.
#[derive(Debug)]
pub struct CookieSessions {
    context: Arc<Context>,
    guard: Arc<SignInGuard>,
    session_end: Arc<SessionEnd>,
    revocations: Arc<Revocations>,
    mfa: Arc<MfaSignIn>,
    /// The touch interval of sessions not remembered and remembered, in
    /// milliseconds (worked out once: every request compares with it).
    touch_interval_ms: (i64, i64),
}

impl CookieSessions {
    /// Cookie sessions over `context`: passwords checked through `guard`,
    /// sessions ended through `session_end`, cached ones checked against
    /// `revocations`; sign-ins of users with a second factor go on
    /// through `mfa`.
    pub fn new(
        context: Arc<Context>,
        guard: Arc<SignInGuard>,
        session_end: Arc<SessionEnd>,
        revocations: Arc<Revocations>,
        mfa: Arc<MfaSignIn>,
    ) -> Self {
        let policy = &context.config().session;
        let touch_interval_ms = |remember_me| {
            let (idle, _) = policy.lifetimes(remember_me);
            i64::try_from(policy.touch_interval(idle).whole_milliseconds()).unwrap_or(i64::MAX)
        };
        let touch_interval_ms = (touch_interval_ms(false), touch_interval_ms(true));
        Self {
            context,
            guard,
            session_end,
            revocations,
            mfa,
            touch_interval_ms,
        }
    }

    /// Cookie sign-in. Any session the request's cookie pointed at is
    /// deleted and a new one with a new secret is made, so a planted cookie
    /// can never become a signed-in session (no fixation). A user with a
    /// second factor gets [`CoreError::MfaRequired`] instead, once the
    /// password is right.
    pub async fn sign_in(
        &self,
        username: &str,
        password: Zeroizing<String>,
        remember_me: bool,
        replacing: &[Secret],
        client: &ClientInfo,
    ) -> Result<SignedIn, CoreError> {
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
                    MfaNext::Cookie { remember_me },
                    client,
                )
                .await?;
            return Err(CoreError::MfaRequired(Box::new(token)));
        }
        self.start(
            record,
            remember_me,
            AuthMethods::PASSWORD,
            replacing,
            client,
        )
        .await
    }

    /// Cookie sign-in of a user a passkey proved alone (`amr`: `hwk`; see
    /// [`Self::sign_in`] for the sessions `replacing` names).
    pub async fn sign_in_with_passkey(
        &self,
        proof: PasskeyProof,
        remember_me: bool,
        replacing: &[Secret],
        client: &ClientInfo,
    ) -> Result<SignedIn, CoreError> {
        self.start(
            proof.record,
            remember_me,
            AuthMethods::NONE.with(AuthMethod::HardwareKey),
            replacing,
            client,
        )
        .await
    }

    /// Finishes a sign-in that stopped for its second factor
    /// ([`CoreError::MfaRequired`]): `mfa_token` and a TOTP or recovery
    /// `code`, from the same address (see [`MfaSignIn::complete`]).
    pub async fn complete_mfa(
        &self,
        mfa_token: &str,
        code: &str,
        replacing: &[Secret],
        client: &ClientInfo,
    ) -> Result<SignedIn, CoreError> {
        let done = self
            .mfa
            .complete_with_code(mfa_token, SessionKind::Cookie, code, client)
            .await?;
        self.finish(done, replacing, client).await
    }

    /// Makes the session of a sign-in completed by [`MfaSignIn::complete`]
    /// (whatever proved the second factor).
    pub async fn finish(
        &self,
        done: Completed,
        replacing: &[Secret],
        client: &ClientInfo,
    ) -> Result<SignedIn, CoreError> {
        let remember_me = match done.next {
            MfaNext::Cookie { remember_me } => remember_me,
            MfaNext::Token => return Err(CoreError::InvalidMfaToken),
        };
        self.start(done.record, remember_me, done.amr, replacing, client)
            .await
    }

    /// A new cookie session for `record`'s user, proven by `amr`, replacing
    /// the sessions of `replacing`.
    async fn start(
        &self,
        record: UserRecord,
        remember_me: bool,
        amr: AuthMethods,
        replacing: &[Secret],
        client: &ClientInfo,
    ) -> Result<SignedIn, CoreError> {
        let store = self.context.store();
        let UserRecord {
            user,
            password_hash,
        } = record;
        for old in replacing {
            if let Some(previous) = store.session_by_secret(&old.hash()).await? {
                self.session_end
                    .end_session(&previous.id, client, Ending::Revoked("sign_in"))
                    .await?;
            }
        }
        let secret = Secret::generate(SecretKind::Session)?;
        let now = self.context.now();
        let (idle, absolute) = self.context.config().session.lifetimes(remember_me);
        let session = Session {
            id: SessionId::generate()?,
            kind: SessionKind::Cookie,
            user_id: user.id,
            secret_hash: secret.hash(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now + idle,
            absolute_expires_at: now + absolute,
            remember_me,
            amr,
            ip: client.ip,
            user_agent: client.user_agent.clone(),
        };
        let event = AuditEvent::new(
            AuditKind::SignInSucceeded,
            Some(user.id),
            client,
            now,
            json!({ "session_id": session.id.as_str(), "kind": "cookie", "amr": amr.amr() }),
        );
        if !store
            .insert_session(&session, &event, &password_hash)
            .await?
        {
            // The password changed or the user was disabled while this
            // attempt was being checked: what it proved no longer holds.
            return Err(CoreError::InvalidCredentials);
        }
        event.log();
        self.context.metrics().session_created(SessionKind::Cookie);
        Ok(SignedIn {
            user,
            session,
            secret,
        })
    }

    /// The user and session behind a cookie secret, if it is live. Records
    /// use at most once per touch interval.
    pub async fn authenticate(&self, secret: &Secret) -> Result<Authenticated, CoreError> {
        let context = &*self.context;
        let hash = secret.hash();
        // In milliseconds: a cached answer is checked without the calendar.
        let now_ms = context.now_millis();
        // One reading of the monotonic clock for every freshness check here.
        let at = Instant::now();
        let found = self.look_up_cached(&hash, now_ms, at, Writer::Claims);
        context
            .metrics()
            .cache_lookup(CacheKind::Session, !matches!(found, FromCache::Missing));
        match found {
            FromCache::Live(auth) => Ok(auth),
            FromCache::Revoked => {
                context.cache().remove_cookie(&hash);
                Err(CoreError::Unauthenticated)
            }
            FromCache::Missing => self.authenticate_from_store(hash, now_ms).await,
            FromCache::Partly {
                session: cached,
                touch_due,
            } => {
                let user = context.live_user_at(cached.user_id(), at).await?;
                if touch_due {
                    let session = self
                        .touch(cached.session(SessionKind::Cookie, hash))
                        .await?;
                    return Ok(Authenticated::new(user, session, None));
                }
                Ok(Authenticated::cached(
                    user,
                    cached,
                    SessionKind::Cookie,
                    hash,
                    None,
                ))
            }
        }
    }

    /// [`Self::authenticate`]'s answer when the in-process caches give all
    /// of it (the session and its user held, no use due to be written
    /// down), without waiting; `None`: ask [`Self::authenticate`], which
    /// gives every other answer. Lets a caller skip its own asynchronous
    /// steps on the most common request.
    pub fn authenticate_cached(&self, secret: &Secret) -> Option<Authenticated> {
        let context = &*self.context;
        let found = self.look_up_cached(
            &secret.hash(),
            context.now_millis(),
            Instant::now(),
            Writer::Not,
        );
        let FromCache::Live(auth) = found else {
            return None;
        };
        context.metrics().cache_lookup(CacheKind::Session, true);
        Some(auth)
    }

    /// What the in-process caches say of the cookie session whose secret
    /// hashes to `hash`, at `now_ms` (wall clock) and `at` (monotonic).
    /// Only positive answers are cached, each checked against the
    /// revocation set, so a session ended on another node is refused here
    /// too; a stale set counts as no answer. A use due to be written down
    /// is [`FromCache::Partly`]; with [`Writer::Claims`], only for the one
    /// caller that claims the write.
    fn look_up_cached(
        &self,
        hash: &SecretHash,
        now_ms: i64,
        at: Instant,
        writer: Writer,
    ) -> FromCache {
        let context = &*self.context;
        let cached = self
            .revocations
            .fresh_at(at)
            .ok()
            .and_then(|()| context.cache().cookie(hash, now_ms, at));
        let Some(cached) = cached else {
            return FromCache::Missing;
        };
        if self
            .revocations
            .set()
            .is_session_bytes_revoked(cached.id_bytes())
        {
            return FromCache::Revoked;
        }
        // Due, and (for a caller that writes it) this request the one to:
        // the others that find it due at the same moment do not write it
        // again.
        let seen_ms = cached.last_seen_at_ms();
        let touch_due = self.touch_due(now_ms, seen_ms, cached.remember_me())
            && match writer {
                Writer::Claims => context.cache().claim_touch(hash, seen_ms, now_ms),
                Writer::Not => true,
            };
        let user = if touch_due {
            None
        } else {
            context.cached_user(cached.user_id(), at)
        };
        match user {
            Some(user) => FromCache::Live(Authenticated::cached(
                user,
                cached,
                SessionKind::Cookie,
                *hash,
                None,
            )),
            None => FromCache::Partly {
                session: cached,
                touch_due,
            },
        }
    }

    /// [`Self::authenticate`] for a session the cache does not hold.
    async fn authenticate_from_store(
        &self,
        hash: SecretHash,
        now_ms: i64,
    ) -> Result<Authenticated, CoreError> {
        let context = &*self.context;
        let now = context.now();
        let Some(session) = context.store().session_by_secret(&hash).await? else {
            return Err(CoreError::Unauthenticated);
        };
        // A store answer may come from a shared cache (Redis) whose
        // tombstone write failed: the revocation set has the last word.
        if session.kind != SessionKind::Cookie
            || !session.secret_hash.ct_eq(&hash)
            || !session.is_live(now)
            || self
                .revocations
                .set()
                .is_session_revoked(session.id.as_str())
        {
            return Err(CoreError::Unauthenticated);
        }
        context.cache().put(&session);
        let user = context.live_user(session.user_id).await?;
        let last_seen_at_ms = to_millis(session.last_seen_at);
        let session = if self.touch_due(now_ms, last_seen_at_ms, session.remember_me) {
            self.touch(session).await?
        } else {
            session
        };
        Ok(Authenticated::new(user, session, None))
    }

    /// Records that `session` is in use now (and extends its idle end).
    async fn touch(&self, mut session: Session) -> Result<Session, CoreError> {
        let context = &*self.context;
        let now = context.now();
        let (idle, _) = context.config().session.lifetimes(session.remember_me);
        session.last_seen_at = now;
        session.idle_expires_at = now + idle;
        context.store().touch_session(&session).await?;
        context.cache().put(&session);
        Ok(session)
    }

    /// Whether a session last seen at `last_seen_at_ms` is due to have its
    /// use written down at `now_ms` (Unix milliseconds): once per touch
    /// interval of its kind of sign-in. Stored times come back as any
    /// 64-bit value, so the difference saturates.
    fn touch_due(&self, now_ms: i64, last_seen_at_ms: i64, remember_me: bool) -> bool {
        let interval_ms = if remember_me {
            self.touch_interval_ms.1
        } else {
            self.touch_interval_ms.0
        };
        now_ms.saturating_sub(last_seen_at_ms) >= interval_ms
    }

    /// The CSRF token of the cookie session whose secret is `secret`.
    pub fn csrf_token(&self, secret: &Secret) -> String {
        secret.derive(CSRF_LABEL)
    }

    /// Ends the caller's own session.
    pub async fn sign_out(
        &self,
        auth: &Authenticated,
        client: &ClientInfo,
    ) -> Result<(), CoreError> {
        self.session_end
            .end_session(&auth.session().id, client, Ending::SignedOut)
            .await?;
        Ok(())
    }
}

/// Whether a cache look-up is made by a caller that writes down a use
/// found due ([`CookieSessions::authenticate`]) or by one that leaves it
/// to that caller ([`CookieSessions::authenticate_cached`]).
#[derive(Clone, Copy)]
enum Writer {
    Claims,
    Not,
}

/// What the in-process caches say of a cookie session.
enum FromCache {
    /// Live, its user held, no use due to be written down: the answer.
    Live(Authenticated),
    /// Ended (on this node or another): refused.
    Revoked,
    /// Live, but its user is to be read or (`touch_due`) its use written
    /// down.
    Partly {
        session: CompactSession,
        touch_due: bool,
    },
    /// Not held (or the revocation set is stale): the store answers.
    Missing,
}
