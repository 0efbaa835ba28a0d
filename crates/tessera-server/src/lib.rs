//! The Tessera server as a library: configuration, the owner-only data
//! directory, the log stream, turning settings into a running store and domain service, and
//! serving HTTP. The `tessera` binary's commands (and `tessera bench`) are
//! built on these.

pub mod config;
pub mod data_dir;
pub mod logging;
pub mod serve;
pub mod wiring;
