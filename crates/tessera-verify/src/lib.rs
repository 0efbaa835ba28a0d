//! Verify Tessera access tokens inside the services behind it: locally, at the cost of a hash lookup, and still refusing a
//! revoked token within about a second.
//!
//! A [`Verifier`] reads the issuer's discovery document, keeps its JSON Web
//! Key Set (an unknown `kid` triggers one rate-limited refetch), and follows
//! the revocation feed (`GET /v1/revocations` as server-sent events),
//! resuming from its cursor after a disconnect. [`Verifier::verify`] runs
//! the same RFC 8725 checks as the server ([`check`]), remembers verified
//! tokens, then consults the revocation set. It fails closed: while the
//! feed has been lost for longer than `max_staleness` (5 s by default),
//! every token is refused with [`VerifyError::Stale`].
//!
//! ```no_run
//! use axum::{Json, Router, routing::get};
//! use tessera_verify::{Verified, Verifier, VerifyLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder("https://auth.example.com")
//!     .audience("https://api.example.com")
//!     .introspection_secret("the issuer's introspection_secret")
//!     .build()
//!     .await?;
//! let app: Router = Router::new()
//!     .route("/hello", get(|Verified(claims): Verified| async move { Json(claims.sub) }))
//!     .layer(VerifyLayer::new(verifier));
//! # Ok(())
//! # }
//! ```
//!
//! Features: `remote` (the [`Verifier`]; on by default) and `axum`
//! ([`VerifyLayer`], [`Verified`]; on by default). Without them the crate
//! is the pure checks ([`check`], [`VerifyingKey`], [`Jwks`],
//! [`VerifiedCache`], [`RevokedIds`]), which the Tessera server itself uses.

#![deny(missing_docs)]

mod cache;
mod check;
mod claims;
mod error;
mod key;
mod revoked;

#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "remote")]
mod feed;
#[cfg(feature = "remote")]
mod sse;
#[cfg(feature = "remote")]
mod verifier;

#[cfg(feature = "axum")]
pub use crate::axum::{Rejection, Verified, VerifyLayer, VerifyService};
pub use crate::cache::{DEFAULT_CAPACITY, TokenKey, VerifiedCache};
pub use crate::check::{
    ACCESS_TOKEN_TYP, Expectations, MAX_TOKEN_BYTES, check, check_ignoring_expiry,
};
pub use crate::claims::Claims;
pub use crate::error::VerifyError;
pub use crate::key::{Algorithm, Jwks, KeySet, VerifyingKey};
pub use crate::revoked::{RevocationEntry, RevokedIds};
#[cfg(feature = "remote")]
pub use crate::verifier::{Verifier, VerifierBuilder};
