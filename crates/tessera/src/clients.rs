//! `tessera client add|list|remove`: OAuth clients.

use anyhow::Context as _;
use clap::Subcommand;
use tessera_core::client::ClientInfo;
use tessera_core::oauth_clients::NewClient;
use tessera_server::config::Settings;
use tessera_server::wiring;
use uuid::Uuid;

/// OAuth client administration.
#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once.
    Add {
        /// The name users see on the consent page and beside its sessions.
        name: String,
        /// A redirect URI (repeatable; at least one): compared exactly.
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may send the browser (repeatable).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (SPA, native app): no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// A first-party client: no consent page.
        #[arg(long)]
        skip_consent: bool,
        /// Sign its ID tokens with this algorithm instead of RS256.
        #[arg(long, value_name = "ALG")]
        id_token_alg: Option<String>,
    },
    /// List clients.
    List,
    /// Remove a client and end every session it holds.
    Remove {
        /// The client id.
        client_id: String,
    },
}

/// Runs a client command against the configured store.
pub async fn run(command: ClientCommand, settings: &Settings) -> anyhow::Result<()> {
    let backend = wiring::open_store(settings).await?;
    let outcome = async {
        let core = wiring::domain(settings, &backend, false).await?;
        let cli = ClientInfo::new(None, Some("tessera-cli"));
        match command {
            ClientCommand::Add {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                skip_consent,
                id_token_alg,
            } => {
                let (client, secret) = core
                    .clients
                    .register(
                        NewClient {
                            name,
                            redirect_uris,
                            post_logout_redirect_uris,
                            public,
                            skip_consent,
                            id_token_signed_response_alg: id_token_alg,
                        },
                        &cli,
                    )
                    .await?;
                println!("client_id\t{}", client.id);
                if let Some(secret) = secret {
                    println!("client_secret\t{}", secret.expose());
                    eprintln!("The secret is shown this once: only its hash is stored.");
                }
            }
            ClientCommand::List => {
                for c in core.clients.list().await? {
                    println!(
                        "{}\t{}\t{}\t{}",
                        c.id,
                        c.name,
                        if c.public { "public" } else { "confidential" },
                        c.redirect_uris.join(" ")
                    );
                }
            }
            ClientCommand::Remove { client_id } => {
                let id = Uuid::parse_str(&client_id)
                    .with_context(|| format!("{client_id:?} is not a client id"))?;
                let ended = core
                    .clients
                    .remove(id, &cli)
                    .await
                    .with_context(|| format!("no client {id}"))?;
                println!("client {id} removed; {ended} sessions ended");
            }
        }
        anyhow::Ok(())
    }
    .await;
    backend.close().await;
    outcome
}
