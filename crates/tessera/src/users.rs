//! `tessera user add|list|disable|enable`.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use tessera_core::client::ClientInfo;
use tessera_core::user::ADMIN_ROLE;
use tessera_server::config::Settings;
use tessera_server::wiring;
use zeroize::Zeroizing;

/// User administration from the command line.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input (one line),
    /// or prompted for without echo on a terminal.
    Add {
        /// The new username.
        username: String,
        /// Grant the admin role.
        #[arg(long)]
        admin: bool,
        /// Grant a role (repeatable).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// List users.
    List,
    /// Disable a user and revoke every session of theirs.
    Disable {
        /// The username.
        username: String,
    },
    /// Allow a disabled user to sign in again.
    Enable {
        /// The username.
        username: String,
    },
}

/// Runs a user command against the configured store.
pub async fn run(command: UserCommand, settings: &Settings) -> anyhow::Result<()> {
    let backend = wiring::open_store(settings).await?;
    let core = wiring::domain(settings, &backend, false).await?;
    let cli = ClientInfo::new(None, Some("tessera-cli"));
    let outcome = async {
        match command {
            UserCommand::Add {
                username,
                admin,
                mut roles,
            } => {
                if admin {
                    roles.push(ADMIN_ROLE.to_owned());
                }
                roles.sort();
                roles.dedup();
                let password = read_password()?;
                let user = core
                    .accounts
                    .create_user(&username, password, roles, &cli)
                    .await?;
                println!("{}\t{}", user.id, user.username.display());
            }
            UserCommand::List => {
                let mut after: Option<String> = None;
                loop {
                    let page = core.accounts.list_users(after.as_deref(), 500).await?;
                    for user in &page {
                        println!(
                            "{}\t{}\t{}\t{}",
                            user.id,
                            user.username.display(),
                            if user.disabled { "disabled" } else { "active" },
                            user.roles.join(",")
                        );
                    }
                    match page.last() {
                        Some(last) if page.len() == 500 => {
                            after = Some(last.username.normalized().to_owned())
                        }
                        _ => break,
                    }
                }
            }
            UserCommand::Disable { username } => {
                set_disabled(&core.accounts, &username, true, &cli).await?
            }
            UserCommand::Enable { username } => {
                set_disabled(&core.accounts, &username, false, &cli).await?
            }
        }
        anyhow::Ok(())
    }
    .await;
    backend.close().await;
    outcome
}

async fn set_disabled(
    accounts: &tessera_core::accounts::Accounts,
    username: &str,
    disabled: bool,
    cli: &ClientInfo,
) -> anyhow::Result<()> {
    let Some(user) = accounts.user_by_username(username).await? else {
        bail!("no user named {username}");
    };
    accounts.set_disabled(user.id, disabled, cli).await?;
    println!(
        "{}\t{}",
        user.id,
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}

fn read_password() -> anyhow::Result<Zeroizing<String>> {
    use std::io::IsTerminal;
    let line = if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password("Password: ").context("cannot read the password")?,
        );
        let again = Zeroizing::new(
            rpassword::prompt_password("Again: ").context("cannot read the password")?,
        );
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line
    };
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}
