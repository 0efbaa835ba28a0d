//! Tessera's SQL stores, written once for SQLite and PostgreSQL: every
//! store operation is a method of [`SqlStore`], generic over a [`Dialect`]
//! (the sqlx database, the statements the two write differently, how each
//! keeps times, ids and addresses, and the few operations each settles its
//! own way). A dialect crate holds its connection setup, its migrations,
//! its `Dialect` and its store type, which gets the store traits from
//! [`forward_store_traits!`].
//!
//! One module per concept: [`users`], [`sessions`], [`refresh`], [`keys`],
//! [`revocations`], [`audit`], [`counters`], [`health`], [`clients`] (OAuth
//! clients, consents, the sessions they hold), [`codes`] (authorization codes), [`passkeys`] (WebAuthn credentials and
//! ceremonies),
//! and [`bulk`] (loading many rows at once, outside the store traits).

pub mod audit;
pub mod bulk;
pub mod clients;
pub mod codec;
pub mod codes;
pub mod counters;
pub mod dialect;
pub mod errors;
mod forward;
pub mod health;
pub mod keys;
pub mod passkeys;
pub mod refresh;
pub mod revocations;
pub mod second_factors;
pub mod sessions;
pub mod sql;
pub mod store;
pub mod users;

pub use bulk::BulkLoad;
pub use codec::{Backend, Codec, Statement};
pub use dialect::{Dialect, Exchange, Lock};
pub use errors::{corrupt, unavailable, write_error};
pub use sql::Sql;
pub use store::SqlStore;

/// What [`forward_store_traits!`] names, reachable from the dialect crates.
#[doc(hidden)]
pub mod __private {
    pub use crate::bulk::BulkLoad;
    pub use async_trait::async_trait;
    pub use tessera_core::attempt::{Admission, Attempt};
    pub use tessera_core::audit::{AuditEvent, AuditRecord};
    pub use tessera_core::authorization_code::{AuthorizationCode, CodeRedemption};
    pub use tessera_core::consent::{ClientSession, Consent};
    pub use tessera_core::keys::StoredKey;
    pub use tessera_core::mfa::{MfaChallenge, MfaStatus, TotpFactor};
    pub use tessera_core::oauth_client::OAuthClient;
    pub use tessera_core::passkey::{Ceremony, PasskeyRecord};
    pub use tessera_core::revocation::{Revocation, RevocationKind};
    pub use tessera_core::secret::SecretHash;
    pub use tessera_core::session::{Session, SessionId};
    pub use tessera_core::store::{
        Audit, AuthorizationCodes, Ceremonies, Clients, Counters, Health, Keys, PasskeyCredentials,
        RefreshTokens, Revocations, Rotation, SecondFactors, Sessions, StoreResult, Users,
    };
    pub use tessera_core::user::{User, UserRecord};
    pub use time::{Duration, OffsetDateTime};
    pub use uuid::Uuid;
}
