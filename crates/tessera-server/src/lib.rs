//! The Tessera server as a library: configuration, the owner-only data
//! directory, the log stream, turning settings into a running store and
//! domain service, serving HTTP, and backing up and restoring the embedded
//! store. The `tessera` binary's commands (and `tessera bench`) are built on
//! these.

pub mod backup;
pub mod config;
pub mod data_dir;
pub mod logging;
pub mod restore;
pub mod serve;
pub mod wiring;
