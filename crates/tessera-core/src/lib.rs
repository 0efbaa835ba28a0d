//! Tessera's domain: users, sessions of both kinds, secrets, password hashing,
//! policies, and the store traits every backend implements.
//!
//! Nothing here knows HTTP or SQL: the HTTP layer calls the services bundled
//! in [`Tessera`], and they call a [`store::Store`].
//!
//! # Layers
//!
//! Each module uses only modules of its own layer or below, never above, and
//! there is no cycle within a layer:
//!
//! 1. **Values and rules**, no service: `clock`, `secret`, `username`,
//!    `user`, `auth_methods`, `session`, `password`, `attempt`, `rate_limit`, `audit`,
//!    `totp`, `recovery_code`, `mfa`,
//!    `client`, `oauth_client`, `consent`, `rfc3339`,
//!    `authorization_code`, `passkey`, `error`, `keys`, `key_wrap`, `jwt`, `revocation`, `id_token`, `store`,
//!    `session_cache`, `config`, `metrics`, `metered_store` (the store, timed).
//! 2. **[`context::Context`]**: what every service shares (store, clock,
//!    settings, hashing pool, session cache, metrics; the audit write and
//!    the live-user lookup). It knows no service.
//! 3. **Services other services use**: [`revocations::Revocations`],
//!    [`signing_keys::SigningKeys`], [`sign_in_guard::SignInGuard`] (its
//!    reservations held by `unsettled_attempt`), then
//!    [`session_end::SessionEnd`] (over `Revocations`),
//!    [`mfa_factors::MfaFactors`] (over `SignInGuard` and `SigningKeys`),
//!    [`mfa_sign_in::MfaSignIn`] (over `MfaFactors`).
//! 4. **The services callers use**: [`accounts::Accounts`],
//!    [`cookie_session::CookieSessions`], [`token_session::TokenSessions`],
//!    [`user_sessions::UserSessions`], [`oauth_clients::OAuthClients`] (over `SigningKeys`),
//!    [`authorization::Authorization`] (over `TokenSessions` and `OAuthClients`),
//!    [`rp_logout::RpLogout`] (over `OAuthClients`),
//!    [`passkeys::Passkeys`],
//!    [`health::Health`], [`scrape::Scrape`] (what `/metrics` answers),
//!    [`sweeper::Sweeper`], [`audit_log::AuditLog`].
//! 5. **[`Tessera`]** (`tessera.rs`): builds them all over one store and
//!    holds them; nothing below knows it.
//!
//! A service holds what it needs by `Arc`, given at construction: there are
//! no back-references.

pub mod accounts;
pub mod attempt;
pub mod audit;
pub mod audit_log;
pub mod auth_methods;
pub mod authenticated;
pub mod authorization;
pub mod authorization_code;
pub mod base64url;
pub mod client;
pub mod clock;
pub mod compact_session;
pub mod config;
pub mod consent;
pub mod context;
pub mod cookie_session;
pub mod error;
pub mod health;
pub mod id_token;
mod jws;
pub mod jwt;
pub mod key_wrap;
pub mod keys;
pub mod metered_store;
pub mod metrics;
pub mod mfa;
pub mod mfa_factors;
pub mod mfa_sign_in;
pub mod oauth_client;
pub mod oauth_clients;
pub mod passkey;
pub mod passkeys;
pub mod password;
pub mod rate_limit;
pub mod recovery_code;
pub mod revocation;
pub mod revocations;
pub mod rfc3339;
pub mod rp_logout;
pub mod scrape;
pub mod secret;
pub mod session;
mod session_cache;
pub mod session_end;
pub mod sign_in_guard;
pub mod signing_keys;
pub mod store;
pub mod sweeper;
pub mod tessera;
pub mod token_session;
pub mod totp;
mod unsettled_attempt;
pub mod user;
pub mod user_sessions;
pub mod username;

pub use config::TesseraConfig;
pub use error::CoreError;
pub use session_cache::SessionCacheStats;
pub use tessera::Tessera;
