//! `tessera keys rotate|list|rewrap`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use tessera_core::client::ClientInfo;
use tessera_core::key_wrap;
use tessera_core::keys::KeyPurpose;
use tessera_server::config::Settings;
use tessera_server::{data_dir, wiring};

/// Signing key administration.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key current; the old one keeps verifying until
    /// the tokens it signed have expired. Running servers pick it up within
    /// seconds.
    Rotate,
    /// List signing keys (never their private parts).
    List,
    /// Re-wrap every signing key under the configured key-encryption key,
    /// after rotating it: the keys are opened with the old key, read from
    /// FILE, and sealed again under the new one. Stop every node first, and
    /// start them again with the new key.
    Rewrap {
        /// File holding the old key-encryption key (base64 of 32 bytes).
        #[arg(long, value_name = "FILE")]
        from_key_file: PathBuf,
    },
}

/// Runs a keys command against the configured store.
pub async fn run(command: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    let backend = wiring::open_store(settings).await?;
    let outcome = async {
        let cli = ClientInfo::new(None, Some("tessera-cli"));
        match command {
            KeysCommand::Rotate => {
                let core = wiring::domain(settings, &backend, false).await?;
                let key = core.signing_keys.rotate(&cli).await?;
                println!("{}\t{}\tcurrent", key.kid, key.algorithm.as_str());
            }
            KeysCommand::List => {
                let core = wiring::domain(settings, &backend, false).await?;
                let format = time::format_description::well_known::Rfc3339;
                for key in core.signing_keys.list().await? {
                    let state = match (key.retired_at, key.expires_at) {
                        (None, _) => "current".to_owned(),
                        (Some(_), Some(end)) => format!(
                            "retired, verifies until {}",
                            end.format(&format).unwrap_or_default()
                        ),
                        (Some(_), None) => "retired".to_owned(),
                    };
                    let purpose = match key.purpose {
                        KeyPurpose::Access => "",
                        KeyPurpose::IdToken => "\tID tokens only",
                    };
                    println!(
                        "{}\t{}\t{}{}",
                        key.kid,
                        key.algorithm.as_str(),
                        state,
                        purpose
                    );
                }
            }
            KeysCommand::Rewrap { from_key_file } => {
                let from = data_dir::read_key_file(&from_key_file)?.with_context(|| {
                    format!("{} does not exist", from_key_file.display())
                })?;
                // The embedded store may generate its new key here: its old
                // one was moved out of the data directory to be rotated.
                let to = wiring::key_encryption_key(settings, &backend, true).await?;
                let now = time::OffsetDateTime::now_utc();
                let done = key_wrap::rewrap(&*backend.store, &from, &to, &cli, now).await?;
                println!(
                    "{} signing keys re-wrapped from key-encryption key {} to {}; {} sealed from clear; {} already under it",
                    done.rewrapped.len(),
                    from.id(),
                    to.id(),
                    done.sealed.len(),
                    done.unchanged.len()
                );
                println!(
                    "{} TOTP secrets re-wrapped to {}",
                    done.totp_secrets,
                    to.id()
                );
            }
        }
        anyhow::Ok(())
    }
    .await;
    backend.close().await;
    outcome
}
