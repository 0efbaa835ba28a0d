//! Tessera's domain: users, sessions of both kinds, secrets, password hashing,
//! policies, and the store traits every backend implements.
//!
//! Nothing here knows HTTP or SQL: the HTTP layer calls [`Tessera`], and
//! [`Tessera`] calls a [`store::Store`].

pub mod attempt;
pub mod audit;
pub mod client;
pub mod clock;
pub mod error;
pub mod jwt;
pub mod key_wrap;
pub mod keys;
pub mod password;
pub mod rate_limit;
pub mod revocation;
pub mod secret;
pub mod service;
pub mod session;
mod session_cache;
pub mod session_end;
pub mod store;
pub mod token_cache;
pub mod token_session;
pub mod user;
pub mod username;

pub use error::CoreError;
pub use service::{Tessera, TesseraConfig};
pub use session_cache::SessionCacheStats;
