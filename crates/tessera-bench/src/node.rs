//! A server running in this process, on loopback, as `tessera serve` wires
//! it (without TLS, the sweeper or key reloads, which no scenario needs).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tessera_core::Tessera;
use tessera_core::store::Store;
use tessera_http::{AppState, app};
use tessera_server::config::Settings;
use tessera_server::wiring;
use tessera_store_redis::Redis;

use crate::progress::progress;

/// A server running in this process.
pub(crate) struct Node {
    pub(crate) addr: SocketAddr,
    pub(crate) core: Arc<Tessera>,
    backend: wiring::Backend,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Where its data lives, for the report.
    pub(crate) describe: String,
}

impl Node {
    /// Opens the store `settings` name, the domain over it, and serves it
    /// on an ephemeral loopback port.
    pub(crate) async fn start(settings: Settings, name: &str) -> anyhow::Result<Self> {
        progress(&format!("starting the {name} server"));
        let backend = wiring::open_store(&settings).await?;
        let core = wiring::domain(&settings, &backend, true).await?;
        let mut tasks = backend.start_revocation_sync(
            core.revocations.clone(),
            core.context.metrics().redis_availability(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding loopback")?;
        let addr = listener.local_addr().context("local address")?;
        let state = AppState::new(core.clone(), wiring::http_config(&settings))
            .with_forward_auth(wiring::forward_auth_config(&settings));
        let service = app(state)
            .map_err(anyhow::Error::msg)?
            .into_make_service_with_connect_info::<SocketAddr>();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, service).await;
        }));
        let describe = backend.describe(&settings);
        Ok(Self {
            addr,
            core,
            backend,
            tasks,
            describe,
        })
    }

    /// The store under the domain, measured directly.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.backend.store
    }

    /// The Redis in front of the store, if any.
    pub(crate) fn redis(&self) -> Option<&Arc<Redis>> {
        self.backend.redis()
    }

    /// Stops serving and closes the store.
    pub(crate) async fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
        self.backend.close().await;
    }
}
