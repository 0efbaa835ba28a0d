//! [`Tessera`]: the domain services, built together over one store. The
//! bundle has no behaviour of its own: callers reach the service they need
//! by its field (`core.cookie_sessions.authenticate(..)`).

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::audit_log::AuditLog;
use crate::authorization::Authorization;
use crate::clock::Clock;
use crate::config::TesseraConfig;
use crate::context::Context;
use crate::cookie_session::CookieSessions;
use crate::error::CoreError;
use crate::health::Health;
use crate::key_wrap::KeyEncryptionKey;
use crate::mfa_factors::MfaFactors;
use crate::mfa_sign_in::MfaSignIn;
use crate::oauth_clients::OAuthClients;
use crate::passkeys::Passkeys;
use crate::revocations::Revocations;
use crate::rp_logout::RpLogout;
use crate::scrape::Scrape;
use crate::session_end::SessionEnd;
use crate::sign_in_guard::SignInGuard;
use crate::signing_keys::SigningKeys;
use crate::store::Store;
use crate::sweeper::Sweeper;
use crate::token_session::TokenSessions;
use crate::user_sessions::UserSessions;

/// The domain services.
pub struct Tessera {
    /// What the services share: store, clock, settings, hashing pool, cache.
    pub context: Arc<Context>,
    /// Users: registration, password changes, disabling, lookups.
    pub accounts: Accounts,
    /// Browser sessions: sign-in, the cookie check, CSRF token, sign-out.
    pub cookie_sessions: CookieSessions,
    /// OAuth token sessions: grants, bearer check, revocation, introspection.
    pub token_sessions: Arc<TokenSessions>,
    /// Second factors: TOTP enrolment, recovery codes, disabling, reset.
    pub mfa_factors: Arc<MfaFactors>,
    /// Sign-ins waiting for a second factor.
    pub mfa_sign_in: Arc<MfaSignIn>,
    /// A user's sessions: listing and revoking them.
    pub user_sessions: UserSessions,
    /// OAuth clients: registration, removal, client authentication.
    pub clients: Arc<OAuthClients>,
    /// The authorization-code flow: codes, consents, ID tokens.
    pub authorization: Authorization,
    /// RP-initiated logout.
    pub rp_logout: RpLogout,
    /// Passkeys: registration, listing, removal, proving a user with one.
    pub passkeys: Arc<Passkeys>,
    /// Brute-force limits in front of every password check.
    pub sign_in_guard: Arc<SignInGuard>,
    /// The access-token signing keys.
    pub signing_keys: Arc<SigningKeys>,
    /// The revocation set and its sync with the store.
    pub revocations: Arc<Revocations>,
    /// Readiness.
    pub health: Health,
    /// This server's metrics, as `/metrics` answers them.
    pub scrape: Scrape,
    /// The sweep of expired rows.
    pub sweeper: Sweeper,
    /// Reading the audit log.
    pub audit_log: AuditLog,
}

impl std::fmt::Debug for Tessera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tessera")
            .field("config", self.context.config())
            .finish_non_exhaustive()
    }
}

impl Tessera {
    /// Builds the services over `store`: makes sure a signing key of the
    /// configured algorithm exists (rotating to one if the algorithm
    /// changed), loads the key set (opened with `kek`, sealing keys still in
    /// clear) and the revocation set.
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: TesseraConfig,
        kek: KeyEncryptionKey,
    ) -> Result<Self, CoreError> {
        let context = Arc::new(Context::new(store, clock, config)?);
        let signing_keys = Arc::new(SigningKeys::open(context.clone(), kek).await?);
        let revocations = Arc::new(Revocations::new(context.clone()));
        revocations.sync().await?;
        let session_end = Arc::new(SessionEnd::new(context.clone(), revocations.clone()));
        let sign_in_guard = Arc::new(SignInGuard::new(context.clone()));
        let mfa_factors = Arc::new(MfaFactors::new(
            context.clone(),
            sign_in_guard.clone(),
            signing_keys.clone(),
        ));
        let passkeys = Arc::new(Passkeys::new(context.clone()));
        let mfa_sign_in = Arc::new(MfaSignIn::new(
            context.clone(),
            sign_in_guard.clone(),
            mfa_factors.clone(),
            passkeys.clone(),
        ));
        let token_sessions = Arc::new(TokenSessions::new(
            context.clone(),
            sign_in_guard.clone(),
            session_end.clone(),
            revocations.clone(),
            signing_keys.clone(),
            mfa_sign_in.clone(),
        ));
        let clients = Arc::new(OAuthClients::new(
            context.clone(),
            session_end.clone(),
            signing_keys.clone(),
        ));
        Ok(Self {
            rp_logout: RpLogout::new(
                context.clone(),
                clients.clone(),
                signing_keys.clone(),
                session_end.clone(),
            ),
            authorization: Authorization::new(
                context.clone(),
                clients.clone(),
                token_sessions.clone(),
                session_end.clone(),
                signing_keys.clone(),
            ),
            clients,
            token_sessions,
            passkeys,
            accounts: Accounts::new(context.clone(), sign_in_guard.clone(), session_end.clone()),
            cookie_sessions: CookieSessions::new(
                context.clone(),
                sign_in_guard.clone(),
                session_end.clone(),
                revocations.clone(),
                mfa_sign_in.clone(),
            ),
            mfa_factors,
            mfa_sign_in,
            user_sessions: UserSessions::new(context.clone(), session_end),
            health: Health::new(context.clone(), revocations.clone()),
            scrape: Scrape::new(context.clone(), revocations.clone(), signing_keys.clone()),
            sweeper: Sweeper::new(context.clone(), revocations.clone()),
            audit_log: AuditLog::new(context.clone()),
            sign_in_guard,
            signing_keys,
            revocations,
            context,
        })
    }
}
