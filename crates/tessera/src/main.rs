//! `tessera`: the authentication server and its administration commands.

mod clients;
mod keys;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera_server::{config, data_dir, serve, wiring};

/// A request allocates and frees dozens of small buffers (headers, bodies,
/// futures); mimalloc serves them from thread-local pages at a fraction of
/// the system allocator's cost (measured in docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One authentication server for session cookies and JWT access tokens.
#[derive(Parser)]
#[command(name = "tessera", version, about)]
struct Cli {
    /// TOML configuration file; every key can also be set by a TESSERA_ variable.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply pending store migrations and exit.
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Manage token signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(clients::ClientCommand),
    /// Measure sessions against tokens on this machine.
    Bench(tessera_bench::BenchArgs),
}

fn main() -> ExitCode {
    data_dir::restrict_umask();
    let cli = Cli::parse();
    let settings = match config::Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("tessera: {e}");
            return ExitCode::from(2);
        }
    };
    tessera_server::logging::init_logging(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tessera: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::run(settings).await,
            Command::Migrate => wiring::migrate(&settings).await,
            Command::User(command) => users::run(command, &settings).await,
            Command::Keys(command) => keys::run(command, &settings).await,
            Command::Client(command) => clients::run(command, &settings).await,
            Command::Bench(args) => tessera_bench::run(args, settings).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            ExitCode::FAILURE
        }
    }
}
