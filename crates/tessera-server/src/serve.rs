//! `tessera serve`: bind, serve (HTTP or HTTPS), sweep expired sessions,
//! shut down gracefully.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tessera_http::{AppState, app};

use crate::config::Settings;
use crate::wiring;

/// How often expired sessions are removed from the store.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How often signing keys are reread, so a rotation elsewhere is picked up.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// Request headers larger than this in total are refused with 431.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// A client must send its request headers within this (slowloris defence).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// ... and its first request within this of connecting.
const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake must finish within this.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs the server until SIGINT or SIGTERM, then lets in-flight requests finish.
pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    if !settings.cookie.secure {
        tracing::warn!(
            "cookie.secure is false: session cookies travel without the Secure flag and the __Host- prefix; use this only for plain-HTTP development"
        );
    }
    let tls = match &settings.tls {
        Some(tls) => Some(
            RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .with_context(|| {
                    format!(
                        "cannot load the TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?,
        ),
        None => None,
    };
    let listener = std::net::TcpListener::bind(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    // With an ephemeral port and no public_url, the URL is only known now.
    settings.bind_public_url(local);
    let backend = wiring::open_store(&settings).await?;
    let core = wiring::domain(&settings, &backend, true).await?;
    tracing::info!(data_dir = %settings.data_dir.display(), "{}", backend.describe(&settings));
    let signals = ShutdownSignals::install();
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %local, public_url = %settings.public_url, "listening on {scheme}://{local}");

    let sweeper = {
        let core = core.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                match core.sweeper.sweep_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "expired sessions swept"),
                    Err(e) => tracing::warn!(error = %e, "session sweep failed"),
                }
            }
        })
    };
    let revocation_sync = backend.start_revocation_sync(
        core.revocations.clone(),
        core.context.metrics().redis_availability(),
    );
    let key_reload = {
        let keys = core.signing_keys.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_RELOAD_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = keys.reload().await {
                    tracing::warn!(error = %e, "key reload failed");
                }
            }
        })
    };

    let handle = Handle::new();
    let http = wiring::http_config(&settings);
    {
        let handle = handle.clone();
        let draining = http.draining.clone();
        let drain = settings.shutdown_drain;
        let mut signals = signals;
        tokio::spawn(async move {
            signals.next().await;
            draining.start();
            if !drain.is_zero() {
                tracing::info!(
                    seconds = drain.as_secs_f64(),
                    "draining: /readyz answers 503 and connections close after their answer"
                );
                // A second signal cuts the drain short.
                tokio::select! {
                    () = tokio::time::sleep(drain) => {}
                    () = signals.next() => {}
                }
            }
            tracing::info!("shutting down: finishing in-flight requests");
            handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        });
    }
    let state = AppState::new(core, http)
        .with_ui(settings.ui.clone())
        .with_forward_auth(wiring::forward_auth_config(&settings));
    let service = app(state)
        .map_err(anyhow::Error::msg)?
        .into_make_service_with_connect_info::<SocketAddr>();
    let outcome = match tls {
        Some(tls) => {
            let acceptor = RustlsAcceptor::new(tls).handshake_timeout(TLS_HANDSHAKE_TIMEOUT);
            let mut server = axum_server::from_tcp(listener)
                .context("cannot serve HTTPS on the listener")?
                .acceptor(acceptor)
                .handle(handle)
                .first_request_timeout(FIRST_REQUEST_TIMEOUT);
            limit_http(server.http_builder());
            server.serve(service).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .context("cannot serve on the listener")?
                .handle(handle)
                .first_request_timeout(FIRST_REQUEST_TIMEOUT);
            limit_http(server.http_builder());
            server.serve(service).await
        }
    };
    outcome.context("the server failed")?;
    sweeper.abort();
    for task in revocation_sync {
        task.abort();
    }
    key_reload.abort();
    backend.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Header size and read-time limits for HTTP/1 (and the HTTP/2 equivalent).
fn limit_http(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder
        .http1()
        .max_buf_size(MAX_HEADER_BYTES)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX));
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from before the server says
/// it is listening: a signal sent the moment it does is a shutdown, never
/// the default action of killing the process.
struct ShutdownSignals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves at the next SIGINT or SIGTERM.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn on(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = on(&mut self.terminate) => {}
                () = on(&mut self.interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
