//! The store traits: small, async, grouped by concept. Every operation that
//! must be atomic is one method, so no backend can implement it as
//! check-then-write.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::attempt::{Admission, Attempt};
use crate::audit::{AuditEvent, AuditRecord};
use crate::authorization_code::{AuthorizationCode, CodeRedemption};
use crate::consent::{ClientSession, Consent};
use crate::keys::StoredKey;
use crate::mfa::{MfaChallenge, MfaStatus, TotpFactor};
use crate::oauth_client::OAuthClient;
use crate::passkey::{Ceremony, PasskeyRecord};
use crate::revocation::{Revocation, RevocationKind};
use crate::secret::SecretHash;
use crate::session::{Session, SessionId};
use crate::user::{User, UserRecord};

/// What can go wrong in a store, in the domain's words.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (e.g. the username).
    #[error("duplicate key")]
    Duplicate,
    /// The backing service cannot be reached or answered with an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data cannot be read back into the domain.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// User accounts.
#[async_trait]
pub trait Users: Send + Sync {
    /// Adds a user; [`StoreError::Duplicate`] if the normalised name is taken.
    async fn insert_user(&self, user: &User, password_hash: &str) -> StoreResult<()>;
    /// A user by id.
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<UserRecord>>;
    /// A user by normalised username.
    async fn user_by_username(&self, normalized: &str) -> StoreResult<Option<UserRecord>>;
    /// Users ordered by normalised name, after `after` (exclusive), at most `limit`.
    async fn list_users(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<User>>;
    /// Replaces the password hash; false if there is no such user.
    async fn set_password_hash(
        &self,
        id: Uuid,
        hash: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Disables or enables a user; false if there is no such user.
    async fn set_disabled(
        &self,
        id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Replaces the user's roles; false if there is no such user.
    async fn set_roles(&self, id: Uuid, roles: &[String], now: OffsetDateTime)
    -> StoreResult<bool>;
}

/// Sessions of both kinds.
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Stores a new session and the audit event that records it, in one
    /// transaction: one durable write per sign-in, and never a session
    /// without its record. Only while its user is enabled and still has
    /// `password_hash` (the one the sign-in was checked against), decided
    /// under the user row's lock: a sign-in racing a password change or a
    /// disable either lands before it (and is ended by it) or stores
    /// nothing. False when nothing was stored for that reason.
    async fn insert_session(
        &self,
        session: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool>;
    /// The session whose current secret hashes to `hash`.
    async fn session_by_secret(&self, hash: &SecretHash) -> StoreResult<Option<Session>>;
    /// A session by public id. May come from a cache, without the address
    /// and user agent it was created with.
    async fn session_by_id(&self, id: &SessionId) -> StoreResult<Option<Session>>;
    /// A session by public id as stored, address and user agent included:
    /// never from a cache.
    async fn stored_session(&self, id: &SessionId) -> StoreResult<Option<Session>>;
    /// Records use: writes `session`'s `last_seen_at` and `idle_expires_at`
    /// (nothing else). A cache in front keeps its copy, rewritten with them.
    async fn touch_session(&self, session: &Session) -> StoreResult<()>;
    /// Deletes one session, returning it if it existed.
    async fn delete_session(&self, id: &SessionId) -> StoreResult<Option<Session>>;
    /// Deletes every session of `user_id` but `except`, returning the deleted ones.
    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<&SessionId>,
    ) -> StoreResult<Vec<Session>>;
    /// The user's sessions still live at `now`, newest first.
    async fn list_user_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>>;
    /// Removes sessions expired at `now`; returns how many.
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

/// What exchanging a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current (or replaced within the grace window, as
    /// [`Presented`] tells): the session now has the new token as its only
    /// current one. With the client holding the session, if any.
    Rotated(Session, Presented, Option<Holder>),
    /// The token was replaced longer ago than the grace window: theft. The
    /// whole session has been deleted; here it is, for revocation and audit.
    Reused(Session),
    /// The token belongs to a session that has expired.
    Expired,
    /// No such token.
    Unknown,
    /// The token may not be exchanged by the client presenting it (see
    /// [`check_presenter`]): nothing was changed, nothing revoked.
    WrongClient(WrongClient),
}

/// The OAuth client holding a token session, as an exchange reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The client's id.
    pub client_id: Uuid,
    /// The scope granted to it.
    pub scope: String,
    /// Whether the client is public (has no secret to authenticate with).
    pub public: bool,
}

/// Why a client may not exchange a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongClient {
    /// A confidential client's token presented without that client's
    /// authentication.
    Unauthenticated,
    /// A token issued to another client, or to none, presented by a client.
    Other,
}

/// Whether `by` (the client the request authenticated as, if any) may
/// exchange a refresh token of a session held by `holder` (OAuth 2.1
/// §4.3.1: a refresh token is bound to the client it was issued to). A
/// client's token only by that client, which may go unnamed only when it is
/// public; a password-grant token by no client.
pub fn check_presenter(holder: Option<&Holder>, by: Option<Uuid>) -> Result<(), WrongClient> {
    match (holder, by) {
        (None, None) => Ok(()),
        (Some(holder), Some(by)) if holder.client_id == by => Ok(()),
        (Some(holder), None) if holder.public => Ok(()),
        (Some(_), None) => Err(WrongClient::Unauthenticated),
        (_, Some(_)) => Err(WrongClient::Other),
    }
}

/// Which token an exchange that rotated was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The session's current refresh token.
    Current,
    /// One replaced within the grace window (a retry, or parallel tabs).
    WithinGrace,
}

/// Refresh tokens of token sessions. A session has exactly one current
/// refresh token (its `secret_hash`); replaced ones are kept to detect reuse.
#[async_trait]
pub trait RefreshTokens: Send + Sync {
    /// Stores a new token session, its `secret_hash` as its first refresh
    /// token, and the audit event that records it, in one transaction, on
    /// the same condition as [`Sessions::insert_session`].
    async fn insert_token_session(
        &self,
        session: &Session,
        event: &AuditEvent,
        password_hash: &str,
    ) -> StoreResult<bool>;
    /// Exchanges `presented` for `new` atomically: of concurrent exchanges of
    /// one token, each sees the effects of the previous, so a session never
    /// has two current refresh tokens. Presented by client `by` (the one the
    /// request authenticated as, if any), checked against the session's
    /// holder first, in the same transaction ([`check_presenter`]).
    async fn rotate_refresh(
        &self,
        presented: &SecretHash,
        new: &SecretHash,
        by: Option<Uuid>,
        now: OffsetDateTime,
        grace: time::Duration,
        idle_ttl: time::Duration,
    ) -> StoreResult<Rotation>;
    /// The session a refresh token belongs to, and whether it is the current one.
    async fn session_by_refresh(&self, hash: &SecretHash) -> StoreResult<Option<(Session, bool)>>;
    /// Forgets refresh tokens replaced before `before`.
    async fn prune_refresh_tokens(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// Signing keys, shared by every node.
#[async_trait]
pub trait Keys: Send + Sync {
    /// Every stored key.
    async fn keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Stores `candidate` as the current key of its purpose unless one
    /// exists (two nodes starting at once end up with one key).
    async fn ensure_current_key(&self, candidate: &StoredKey) -> StoreResult<()>;
    /// Atomically retires the current key of `new`'s purpose (it verifies
    /// until `retired_expires_at`) and makes `new` current.
    async fn rotate_key(
        &self,
        new: &StoredKey,
        now: OffsetDateTime,
        retired_expires_at: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Replaces the sealed material of key `kid` with `new` if it is still
    /// `old` (a compare-and-swap: of nodes sealing or re-wrapping at once,
    /// one wins); true if it did.
    async fn replace_sealed_key(&self, kid: &str, old: &[u8], new: &[u8]) -> StoreResult<bool>;
    /// Removes keys that no token can need any more.
    async fn delete_expired_keys(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

/// The persistent side of the revocation set: a log with a cursor.
#[async_trait]
pub trait Revocations: Send + Sync {
    /// Appends revocations, returning them with their positions.
    async fn insert_revocations(
        &self,
        entries: &[(RevocationKind, String, OffsetDateTime)],
    ) -> StoreResult<Vec<Revocation>>;
    /// Unexpired revocations after position `after`, oldest first, at most `limit`.
    async fn revocations_since(
        &self,
        after: i64,
        now: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<Revocation>>;
    /// Removes revocations that can no longer match a valid token.
    async fn delete_expired_revocations(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

/// Expiring counters shared by every node (rate limits). Each method is one
/// atomic operation of the store: concurrent callers on any node each count
/// exactly once, and no limit is checked apart from the write that takes it.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Adds one to `key` in a fixed window that starts at its first hit;
    /// returns the count and when the window ends.
    async fn hit(
        &self,
        key: &str,
        window: time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<(u64, OffsetDateTime)>;
    /// Admits `attempt` and counts it under its keys, or refuses it and
    /// counts nothing, by the rules of [`crate::attempt`]: one atomic
    /// operation over both keys.
    async fn reserve(&self, attempt: &Attempt<'_>, now: OffsetDateTime) -> StoreResult<Admission>;
    /// Gives an admitted attempt's slot back on each key. After a success
    /// (`succeeded`) the account's count and wait are forgotten too.
    async fn release(
        &self,
        attempt: &Attempt<'_>,
        succeeded: bool,
        now: OffsetDateTime,
    ) -> StoreResult<()>;
    /// Blocks `key` until `until` (kept if already blocked for longer) and
    /// forgets its count, in one operation.
    async fn block(&self, key: &str, until: OffsetDateTime, now: OffsetDateTime)
    -> StoreResult<()>;
    /// Removes counters whose window and block have passed.
    async fn delete_expired_counters(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

/// The append-only audit log.
#[async_trait]
pub trait Audit: Send + Sync {
    /// Appends an event.
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Events newest first, with ids below `before` (all when `None`), at most `limit`.
    async fn list_audit(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>>;
}

/// Liveness of the backing services.
#[async_trait]
pub trait Health: Send + Sync {
    /// Succeeds when the store can serve requests.
    async fn ping(&self) -> StoreResult<()>;
    /// Optional parts that are lost right now (e.g. `redis`): the store
    /// serves without them, more slowly.
    async fn degraded(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// Bytes the store uses for sessions (and what grows with them), for
    /// capacity planning and benchmarks; `None` if it cannot tell.
    async fn session_storage_bytes(&self) -> StoreResult<Option<u64>>;
}

/// OAuth clients, the consents users gave them and the sessions they hold.
#[async_trait]
pub trait Clients: Send + Sync {
    /// Registers a client.
    async fn insert_client(&self, client: &OAuthClient) -> StoreResult<()>;
    /// A client by id.
    async fn client_by_id(&self, id: Uuid) -> StoreResult<Option<OAuthClient>>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> StoreResult<Vec<OAuthClient>>;
    /// Removes a client with its consents and codes; `None` if there was no
    /// such client, else the sessions it held (still stored: the caller
    /// ends them, so each is revoked everywhere).
    async fn delete_client(&self, id: Uuid) -> StoreResult<Option<Vec<SessionId>>>;
    /// Records (or replaces) a user's consent to a client.
    async fn put_consent(&self, consent: &Consent) -> StoreResult<()>;
    /// A user's consent to a client.
    async fn consent(&self, user_id: Uuid, client_id: Uuid) -> StoreResult<Option<Consent>>;
    /// A user's consents, newest first.
    async fn list_consents(&self, user_id: Uuid) -> StoreResult<Vec<Consent>>;
    /// Withdraws a user's consent and deletes the codes issued to that
    /// client for that user not yet exchanged; the user's sessions held by
    /// that client (still stored: the caller ends them). `None` if there
    /// was no consent.
    async fn delete_consent(
        &self,
        user_id: Uuid,
        client_id: Uuid,
    ) -> StoreResult<Option<Vec<SessionId>>>;
    /// Records that session `session_id` (stored already) is held by a
    /// client, with the scope granted. The link goes with the session.
    async fn link_client_session(
        &self,
        session_id: &SessionId,
        client_id: Uuid,
        scope: &str,
    ) -> StoreResult<()>;
    /// The client holding a session and the scope granted, if any.
    async fn session_client(&self, session_id: &SessionId) -> StoreResult<Option<(Uuid, String)>>;
    /// The user's sessions held by clients, with the clients' names.
    async fn client_sessions_of_user(&self, user_id: Uuid) -> StoreResult<Vec<ClientSession>>;
}

/// Authorization codes, stored by hash, each redeemed at most once.
#[async_trait]
pub trait AuthorizationCodes: Send + Sync {
    /// Stores a new code.
    async fn insert_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    /// Spends the code whose hash is `hash`, atomically: of concurrent
    /// redemptions exactly one is [`CodeRedemption::Redeemed`]; every
    /// other marks it reused. Expiry is the caller's to check.
    async fn redeem_code(
        &self,
        hash: &SecretHash,
        now: OffsetDateTime,
    ) -> StoreResult<CodeRedemption>;
    /// Records the session a redeemed code created; true if the code has
    /// been presented again meanwhile (the session must then be ended).
    async fn set_code_session(
        &self,
        hash: &SecretHash,
        session_id: &SessionId,
    ) -> StoreResult<bool>;
    /// Forgets codes that expired before `before`.
    async fn delete_expired_codes(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// Users' passkeys (WebAuthn credentials).
#[async_trait]
pub trait PasskeyCredentials: Send + Sync {
    /// Registers a passkey; [`StoreError::Duplicate`] if its credential id
    /// is registered already (to anyone).
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()>;
    /// The user's passkeys, oldest first.
    async fn user_passkeys(&self, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>>;
    /// The passkey with this credential id, whoever owns it.
    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<PasskeyRecord>>;
    /// Renames passkey `id` of `user_id`; false if the user has no such passkey.
    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> StoreResult<bool>;
    /// Removes passkey `id` of `user_id`; false if the user has no such passkey.
    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool>;
    /// Removes every passkey of `user_id` (an administrator's second-factor
    /// reset); how many went.
    async fn delete_user_passkeys(&self, user_id: Uuid) -> StoreResult<u64>;
    /// Records a sign-in with passkey `id`: its credential as updated
    /// (counter, backup flags) and `last_used_at`; false if it is gone.
    async fn record_passkey_use(
        &self,
        id: Uuid,
        credential: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
}

/// The server's state of WebAuthn ceremonies between start and finish.
#[async_trait]
pub trait Ceremonies: Send + Sync {
    /// Stores a ceremony just begun.
    async fn insert_ceremony(&self, ceremony: &Ceremony) -> StoreResult<()>;
    /// Removes ceremony `id` and returns it, atomically: of concurrent
    /// takers, one gets it. Expiry is the caller's to check.
    async fn take_ceremony(&self, id: Uuid) -> StoreResult<Option<Ceremony>>;
    /// Forgets ceremonies expired at `now`; how many went.
    async fn delete_expired_ceremonies(&self, now: OffsetDateTime) -> StoreResult<u64>;
}

/// Second factors: TOTP factors, recovery codes (by hash), and the
/// challenges of sign-ins waiting for a second factor (by hash). Whatever
/// must not be used twice is spent in one conditional write.
#[async_trait]
pub trait SecondFactors: Send + Sync {
    /// Stores a pending (unconfirmed) TOTP factor for `user_id` with its
    /// sealed secret, replacing a pending one; false, storing nothing, if
    /// the user has an enabled one.
    async fn put_pending_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// The user's TOTP factor, pending or enabled.
    async fn totp_factor(&self, user_id: Uuid) -> StoreResult<Option<TotpFactor>>;
    /// Enables the user's pending factor, if its secret is still
    /// `sealed_secret`, with `step` (the confirming code's) as its last
    /// used step; replaces the user's recovery codes with `codes` and
    /// appends `event`: all in one transaction. False, changing nothing,
    /// if there was no such pending factor.
    async fn enable_totp(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        step: i64,
        codes: &[SecretHash],
        event: &AuditEvent,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
    /// Spends time step `step` of the user's enabled factor: true if it is
    /// later than the last one spent (and is now the last one), false for
    /// a replay or no enabled factor. One conditional write, so of two
    /// uses of one code exactly one succeeds.
    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool>;
    /// Deletes the user's TOTP factor (pending or enabled) and recovery
    /// codes; true if there was a factor.
    async fn delete_totp(&self, user_id: Uuid) -> StoreResult<bool>;
    /// Replaces the user's recovery codes while a factor is enabled; false,
    /// changing nothing, otherwise.
    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[SecretHash],
    ) -> StoreResult<bool>;
    /// Spends one of the user's recovery codes: true if it was there (and
    /// is now gone).
    async fn use_recovery_code(&self, user_id: Uuid, hash: &SecretHash) -> StoreResult<bool>;
    /// The user's enabled second factors.
    async fn mfa_status(&self, user_id: Uuid) -> StoreResult<MfaStatus>;
    /// The enabled second factors of each of `user_ids` (a page of users),
    /// in one read; users who do not exist are left out.
    async fn mfa_statuses(&self, user_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, MfaStatus)>>;
    /// Stores a sign-in's challenge.
    async fn insert_mfa_challenge(&self, challenge: &MfaChallenge) -> StoreResult<()>;
    /// A challenge by its token's hash (expired ones included: expiry is
    /// the caller's to check).
    async fn mfa_challenge(&self, hash: &SecretHash) -> StoreResult<Option<MfaChallenge>>;
    /// Spends a challenge: true if it was there (and is now gone), so of
    /// two completions exactly one goes on.
    async fn delete_mfa_challenge(&self, hash: &SecretHash) -> StoreResult<bool>;
    /// Forgets challenges expired at `now`; returns how many.
    async fn delete_expired_mfa_challenges(&self, now: OffsetDateTime) -> StoreResult<u64>;
    /// Every stored TOTP factor's user and sealed secret (for re-wrapping
    /// them under a new key-encryption key).
    async fn sealed_totp_secrets(&self) -> StoreResult<Vec<(Uuid, Vec<u8>)>>;
    /// Replaces the user's sealed TOTP secret with `new` if it is still
    /// `old` (a compare-and-swap); true if it did.
    async fn replace_totp_secret(&self, user_id: Uuid, old: &[u8], new: &[u8])
    -> StoreResult<bool>;
}

/// Everything a backend provides.
pub trait Store:
    Users
    + Sessions
    + RefreshTokens
    + Keys
    + Revocations
    + Counters
    + Audit
    + Health
    + Clients
    + AuthorizationCodes
    + PasskeyCredentials
    + Ceremonies
    + SecondFactors
{
}

impl<
    T: Users
        + Sessions
        + RefreshTokens
        + Keys
        + Revocations
        + Counters
        + Audit
        + Health
        + Clients
        + AuthorizationCodes
        + PasskeyCredentials
        + Ceremonies
        + SecondFactors,
> Store for T
{
}

/// A time as the stores keep it: Unix milliseconds (saturating).
pub fn to_millis(t: OffsetDateTime) -> i64 {
    // Seconds and milliseconds apart: 64-bit arithmetic (the nanosecond
    // count is 128-bit). Rounds down, as `from_millis` reads.
    t.unix_timestamp()
        .saturating_mul(1000)
        .saturating_add(i64::from(t.millisecond()))
}

/// A stored time back; [`StoreError::Corrupt`] if out of range.
pub fn from_millis(ms: i64) -> StoreResult<OffsetDateTime> {
    // Whole seconds, then the milliseconds: 64-bit arithmetic, where the
    // nanosecond constructor divides 128-bit numbers (this runs four times
    // per cached session answer).
    let millis = ms.rem_euclid(1000);
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .and_then(|t| t.replace_millisecond(u16::try_from(millis).unwrap_or(0)))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {ms}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_round_trip_to_the_millisecond() {
        for ms in [
            0,
            1,
            999,
            1_000,
            -1,
            -999,
            -1_001,
            1_764_560_000_123,
            -62_135_596_800_000,
        ] {
            let t = from_millis(ms).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            assert_eq!(
                t,
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                "{ms}"
            );
            assert_eq!(to_millis(t), ms);
        }
        // Below the millisecond, rounded down.
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_764_560_000_123_999_999)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(to_millis(t), 1_764_560_000_123);
        assert!(from_millis(i64::MAX).is_err());
        assert!(from_millis(i64::MIN).is_err());
    }
}
