//! `tessera bench`: sessions against tokens, measured on this machine.
//!
//! Starts servers in this process on loopback (the configured store, or an
//! embedded one), drives them with a small HTTP/1.1 load generator (one
//! connection per task, closed loop, or paced for latency at a fixed rate),
//! and prints one table. Every figure is also given as a ratio to the same
//! server's unauthenticated endpoint measured in the same run, because a
//! shared machine is noisy and only ratios travel.
//!
//! With `--populate N` it measures at scale instead (the `scale` module): a
//! store filled with N sessions against one holding only those requested.

mod args;
mod capacity;
mod client;
mod first_sight;
mod jwt_baseline;
mod latency;
mod load;
mod memory;
mod node;
mod overload;
mod populate;
mod progress;
mod report;
mod run;
mod scale;
mod scale_table;
mod scenarios;
mod scratch_store;
mod spend;
mod table;

pub use args::BenchArgs;
pub use run::run;
