//! `tessera config check`, and the list of every key and its variable that
//! its help shows.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use tessera_server::config::{self, Settings};

/// Configuration commands.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective settings, secrets
    /// redacted.
    ///
    /// The configuration is read as `serve` reads it (the file, then
    /// TESSERA_* variables); each value is printed with where it came from.
    /// When something is wrong, exit with status 2 and a message naming the
    /// key and the file or variable it came from.
    Check,
}

/// Runs `tessera config check`.
pub fn run(file: Option<&Path>) -> ExitCode {
    match Settings::check(file, config::process_env()) {
        Ok((_, effective)) => {
            print!("{effective}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tessera: {e}");
            ExitCode::from(2)
        }
    }
}

/// Every key the loader reads and the variable that sets it.
pub fn keys_help() -> String {
    let keys = config::keys();
    let width = keys.iter().map(String::len).max().unwrap_or(0);
    let mut help = String::from(
        "Every configuration key and the environment variable that sets it (a variable wins \
         over the file; durations are written like 90s, 30m, 12h, 14d; lists as TOML arrays \
         or, in variables, comma-separated):\n\n",
    );
    for key in &keys {
        help.push_str(&format!("  {key:width$}  {}\n", config::env_var(key)));
    }
    help.push_str(&format!(
        "\nThe configuration file itself can be named by {} instead of --config.",
        config::CONFIG_FILE_VAR
    ));
    help
}
