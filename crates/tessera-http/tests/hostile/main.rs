#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Hostile input over real HTTP: malformed, mistyped, injected, oversized
//! and random requests to every endpoint, anonymous and with every kind of
//! credential. No answer may be a 5xx, none may take longer than
//! [`world::LIMIT`], and every refusal must be in the documented format:
//! `application/problem+json`, or RFC 6749 JSON on `/v1/token*`.
//!
//! Every test ends by checking that the server still serves and that a
//! normal sign-in still works. The suite makes thousands of failed sign-ins
//! from one address; rather than rely on `cheap_hashing` raising the
//! brute-force limits, the servers run on a manual clock that is moved past
//! any block before the test user signs in again.
//!
//! - `world`: the server, the request model and the rules every answer obeys
//! - `nasty`: strings and characters that have broken servers before
//! - `raw`: requests written byte by byte on a TCP socket, answers read back
//! - `strategies`: proptest strategies for random requests
//! - the rest: the tests, one concept a file

#[path = "../common/mod.rs"]
mod common;

mod nasty;
mod raw;
mod strategies;
mod world;

mod bodies;
mod oversized;
mod random;
mod targets;
mod usernames;
