//! Every call the pages make into the domain service, in one place: the
//! handlers speak to these functions, so a change in how the domain is
//! split touches this file alone.

use tessera_core::CoreError;
use tessera_core::authenticated::Authenticated;
use tessera_core::authorization::ConsentView;
use tessera_core::client::ClientInfo;
use tessera_core::cookie_session::SignedIn;
use tessera_core::mfa::MfaStatus;
use tessera_core::mfa_factors::TotpEnrolment;
use tessera_core::passkey::PasskeyRecord;
use tessera_core::secret::Secret;
use tessera_core::session::SessionId;
use tessera_core::user::User;
use tessera_core::user_sessions::ListedSession;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::state::AppState;

/// Checks the password (with the API's brute-force limits) and starts a
/// cookie session, ending any session the request's cookies named.
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: Zeroizing<String>,
    remember_me: bool,
    planted: &[Secret],
    client: &ClientInfo,
) -> Result<SignedIn, CoreError> {
    state
        .core()
        .cookie_sessions
        .sign_in(username, password, remember_me, planted, client)
        .await
}

/// Finishes a sign-in that stopped for its second factor: the token of the
/// first step and a TOTP or recovery code.
pub async fn complete_mfa(
    state: &AppState,
    mfa_token: &str,
    code: &str,
    planted: &[Secret],
    client: &ClientInfo,
) -> Result<SignedIn, CoreError> {
    state
        .core()
        .cookie_sessions
        .complete_mfa(mfa_token, code, planted, client)
        .await
}

/// The second factors the user has enabled.
pub async fn mfa_status(state: &AppState, user_id: Uuid) -> Result<MfaStatus, CoreError> {
    state.core().mfa_factors.status(user_id).await
}

/// A pending TOTP enrolment, to show again.
pub async fn pending_totp(
    state: &AppState,
    user: &User,
) -> Result<Option<TotpEnrolment>, CoreError> {
    state
        .core()
        .mfa_factors
        .pending_totp(user, &state.ui().title)
        .await
}

/// Starts (or restarts) a TOTP enrolment.
pub async fn enrol_totp(state: &AppState, user: &User) -> Result<TotpEnrolment, CoreError> {
    state
        .core()
        .mfa_factors
        .enrol_totp(user, &state.ui().title)
        .await
}

/// Confirms the pending enrolment; the recovery codes, once.
pub async fn confirm_totp(
    state: &AppState,
    user: &User,
    code: &str,
    client: &ClientInfo,
) -> Result<Vec<Zeroizing<String>>, CoreError> {
    state
        .core()
        .mfa_factors
        .confirm_totp(user, code, client)
        .await
}

/// Disables TOTP once the password is right.
pub async fn disable_totp(
    state: &AppState,
    user: &User,
    password: Zeroizing<String>,
    client: &ClientInfo,
) -> Result<(), CoreError> {
    state
        .core()
        .mfa_factors
        .disable_totp(user, password, client)
        .await
}

/// A new set of recovery codes, once.
pub async fn regenerate_recovery_codes(
    state: &AppState,
    user: &User,
    client: &ClientInfo,
) -> Result<Vec<Zeroizing<String>>, CoreError> {
    state
        .core()
        .mfa_factors
        .regenerate_recovery_codes(user, client)
        .await
}

/// Self-service registration (limited per address like the API's).
pub async fn register(
    state: &AppState,
    username: &str,
    password: Zeroizing<String>,
    client: &ClientInfo,
) -> Result<User, CoreError> {
    state
        .core()
        .accounts
        .register(username, password, client)
        .await
}

/// The CSRF token of the cookie session whose secret is `secret`.
pub fn csrf_token(state: &AppState, secret: &Secret) -> String {
    state.core().cookie_sessions.csrf_token(secret)
}

/// The domain's clock.
pub fn now(state: &AppState) -> OffsetDateTime {
    state.core().context.now()
}

/// The user's live sessions of both kinds, newest first, with the OAuth
/// client holding each (if any).
pub async fn sessions(state: &AppState, user_id: Uuid) -> Result<Vec<ListedSession>, CoreError> {
    state.core().user_sessions.list(user_id).await
}

/// The user's consents to OAuth clients, newest first.
pub async fn consents(state: &AppState, user_id: Uuid) -> Result<Vec<ConsentView>, CoreError> {
    state.core().authorization.consents(user_id).await
}

/// The second factors the sign-in of `mfa_token` may finish with; `None`
/// when the token cannot finish (expired, used, another address).
pub async fn second_factors(
    state: &AppState,
    mfa_token: &str,
    client: &ClientInfo,
) -> Option<MfaStatus> {
    state
        .core()
        .mfa_sign_in
        .factors(mfa_token, client)
        .await
        .ok()
}

/// The user's passkeys, oldest first.
pub async fn passkeys(state: &AppState, user_id: Uuid) -> Result<Vec<PasskeyRecord>, CoreError> {
    state.core().passkeys.list(user_id).await
}

/// Renames one of the user's passkeys ([`CoreError::NotFound`] if not
/// theirs, [`CoreError::PasskeyRefused`] for a bad name).
pub async fn rename_passkey(
    state: &AppState,
    user_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<(), CoreError> {
    state.core().passkeys.rename(user_id, id, name).await
}

/// Removes one of the user's passkeys ([`CoreError::NotFound`] if not theirs).
pub async fn remove_passkey(
    state: &AppState,
    user_id: Uuid,
    id: Uuid,
    client: &ClientInfo,
) -> Result<(), CoreError> {
    state.core().passkeys.remove(user_id, id, client).await
}

/// Withdraws the user's consent to a client and ends that client's
/// sessions of the user ([`CoreError::NotFound`] if there was none).
pub async fn revoke_consent(
    state: &AppState,
    user_id: Uuid,
    client_id: &str,
    client: &ClientInfo,
) -> Result<usize, CoreError> {
    state
        .core()
        .authorization
        .revoke_consent(user_id, client_id, client)
        .await
}

/// Ends one of the user's sessions ([`CoreError::NotFound`] if not theirs).
pub async fn revoke_session(
    state: &AppState,
    user_id: Uuid,
    id: &str,
    client: &ClientInfo,
) -> Result<(), CoreError> {
    state.core().user_sessions.revoke(user_id, id, client).await
}

/// Ends every session of the user but `keep`.
pub async fn revoke_sessions(
    state: &AppState,
    user_id: Uuid,
    keep: Option<&SessionId>,
    client: &ClientInfo,
) -> Result<usize, CoreError> {
    state
        .core()
        .user_sessions
        .revoke_all(user_id, keep, client, "user")
        .await
}

/// Changes the password; the cookie session is replaced by one with a new
/// secret, returned.
pub async fn change_password(
    state: &AppState,
    auth: &Authenticated,
    current: Zeroizing<String>,
    new: Zeroizing<String>,
    client: &ClientInfo,
) -> Result<Option<Secret>, CoreError> {
    state
        .core()
        .accounts
        .change_password(auth, current, new, client)
        .await
}

/// Ends the caller's own session.
pub async fn sign_out(
    state: &AppState,
    auth: &Authenticated,
    client: &ClientInfo,
) -> Result<(), CoreError> {
    state.core().cookie_sessions.sign_out(auth, client).await
}
