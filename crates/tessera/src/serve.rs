//! `tessera serve`: bind, serve, sweep expired sessions, shut down gracefully.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tessera_http::{AppState, app};

use crate::config::Settings;
use crate::wiring;

/// How often expired sessions are removed from the store.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How often signing keys are reread, so a rotation elsewhere is picked up.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the server until SIGINT or SIGTERM, then lets in-flight requests finish.
pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    if !settings.cookie.secure {
        tracing::warn!(
            "cookie.secure is false: session cookies travel without the Secure flag and the __Host- prefix; use this only for plain-HTTP development"
        );
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    // With an ephemeral port and no public_url, the URL is only known now.
    settings.bind_public_url(local);
    let backend = wiring::open_store(&settings).await?;
    let core = wiring::domain(&settings, &backend, true).await?;
    tracing::info!(data_dir = %settings.data_dir.display(), "{}", backend.describe(&settings));
    tracing::info!(address = %local, public_url = %settings.public_url, "listening on http://{local}");

    let sweeper = {
        let core = core.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                match core.sweep_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "expired sessions swept"),
                    Err(e) => tracing::warn!(error = %e, "session sweep failed"),
                }
            }
        })
    };

    let revocation_sync = backend.start_revocation_sync(core.clone());
    let key_reload = {
        let core = core.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_RELOAD_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = core.reload_keys().await {
                    tracing::warn!(error = %e, "key reload failed");
                }
            }
        })
    };

    let state = AppState::new(core, wiring::http_config(&settings));
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    sweeper.abort();
    for task in revocation_sync {
        task.abort();
    }
    key_reload.abort();
    backend.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
