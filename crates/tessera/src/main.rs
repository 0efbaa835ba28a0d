//! `tessera`: the authentication server and its administration commands.

mod clients;
mod config_check;
mod keys;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use tessera_server::config::CONFIG_FILE_VAR;
use tessera_server::{backup, config, data_dir, restore, serve, wiring};

/// A request allocates and frees dozens of small buffers (headers, bodies,
/// futures); mimalloc serves them from thread-local pages at a fraction of
/// the system allocator's cost (measured in docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How configuration is read, for `--help`.
const CONFIGURATION_HELP: &str = "\
Configuration: a TOML file (--config, or the TESSERA_CONFIG variable), then TESSERA_* environment
variables, which win over the file. A key's variable is TESSERA_ and the key upper-cased, sections
joined by a double underscore: session.idle_timeout is TESSERA_SESSION__IDLE_TIMEOUT.
`tessera config check --help` lists every key and its variable.";

/// One authentication server for session cookies and JWT access tokens.
#[derive(Parser)]
#[command(name = "tessera", version, about, after_long_help = CONFIGURATION_HELP)]
struct Cli {
    /// TOML configuration file. Every key in it can also be set by a
    /// TESSERA_ variable, which wins (see `tessera config check --help`).
    #[arg(long, global = true, value_name = "FILE", env = CONFIG_FILE_VAR)]
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
    /// Check the configuration.
    #[command(subcommand)]
    Config(config_check::ConfigCommand),
    /// Write a consistent copy of the embedded store to FILE, while servers
    /// go on serving.
    ///
    /// The key-encryption key the signing keys are sealed under is not in
    /// it: keep a copy of that apart. PostgreSQL is backed up with pg_dump.
    Backup {
        /// The backup to write; it must not exist.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Replace the embedded store with the backup FILE (stop the servers
    /// first).
    ///
    /// The file is checked before anything is replaced: a Tessera database,
    /// sound, of a schema this version runs, its signing keys sealed under
    /// the key-encryption key used here. Refused while any tessera process
    /// has the store open. The database it replaces is kept beside it as
    /// `<database>.before-restore-<time>`.
    Restore {
        /// The backup to restore.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print a shell completion script.
    ///
    /// For example `tessera completions bash > /etc/bash_completion.d/tessera`,
    /// `tessera completions zsh > "${fpath[1]}/_tessera"` or
    /// `tessera completions fish > ~/.config/fish/completions/tessera.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Measure sessions against tokens on this machine.
    Bench(tessera_bench::BenchArgs),
}

/// The command line, with the help that lists every configuration key.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("config", |config| {
        config.mut_subcommand("check", |check| {
            check.after_long_help(config_check::keys_help())
        })
    })
}

/// `tessera completions SHELL`. Generated in memory first: the generator
/// panics on a failed write (a closed pipe), printing does not.
fn print_completions(shell: clap_complete::Shell) -> ExitCode {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "tessera", &mut script);
    match std::io::stdout().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: cannot print the completion script: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    data_dir::restrict_umask();
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // These need no valid configuration (checking it is the point of one).
    match &cli.command {
        Command::Completions { shell } => return print_completions(*shell),
        Command::Config(config_check::ConfigCommand::Check) => {
            return config_check::run(cli.config.as_deref());
        }
        _ => {}
    }
    let settings = match config::Settings::load(cli.config.as_deref(), config::process_env()) {
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
            Command::Backup { file } => backup::run(&settings, &file).await,
            Command::Restore { file } => restore::run(&settings, &file).await,
            Command::Completions { .. } | Command::Config(_) => Ok(()),
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
