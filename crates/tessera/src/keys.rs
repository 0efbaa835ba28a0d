//! `tessera keys rotate|list`.

use clap::Subcommand;
use tessera_core::client::ClientInfo;

use crate::config::Settings;
use crate::wiring;

/// Signing key administration.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key current; the old one keeps verifying until
    /// the tokens it signed have expired. Running servers pick it up within
    /// seconds.
    Rotate,
    /// List signing keys (never their private parts).
    List,
}

/// Runs a keys command against the configured store.
pub async fn run(command: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    let backend = wiring::open_store(settings).await?;
    let core = wiring::domain(settings, &backend, false).await?;
    let outcome = async {
        match command {
            KeysCommand::Rotate => {
                let key = core
                    .rotate_signing_key(&ClientInfo::new(None, Some("tessera-cli")))
                    .await?;
                println!("{}\t{}\tcurrent", key.kid, key.algorithm.as_str());
            }
            KeysCommand::List => {
                let format = time::format_description::well_known::Rfc3339;
                for key in core.signing_keys().await? {
                    let state = match (key.retired_at, key.expires_at) {
                        (None, _) => "current".to_owned(),
                        (Some(_), Some(end)) => format!(
                            "retired, verifies until {}",
                            end.format(&format).unwrap_or_default()
                        ),
                        (Some(_), None) => "retired".to_owned(),
                    };
                    println!("{}\t{}\t{}", key.kid, key.algorithm.as_str(), state);
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    backend.close().await;
    outcome
}
