//! Shared state handed to every handler.

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::SecretString;
use tessera_core::Tessera;

use crate::cookie::CookieConfig;
use crate::csrf::OriginPolicy;

/// HTTP-side settings, validated before the server starts.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// How the session cookie is written and read.
    pub cookie: CookieConfig,
    /// Which origins may send state-changing requests.
    pub origins: OriginPolicy,
    /// Bearer secret of the administration API, if configured (never printed).
    pub admin_token: Option<SecretString>,
    /// Bearer secret that lets resource servers introspect tokens and read
    /// the revocation feed, if configured (never printed).
    pub introspection_secret: Option<SecretString>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Send `Strict-Transport-Security` (when serving HTTPS).
    pub hsts: bool,
    /// Longest a request may take, body upload included, before a 408
    /// (default 30 s).
    pub request_timeout: Option<std::time::Duration>,
}

/// Everything a handler needs, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    core: Arc<Tessera>,
    http: HttpConfig,
}

impl AppState {
    /// Bundles the domain service and the HTTP settings.
    pub fn new(core: Arc<Tessera>, http: HttpConfig) -> Self {
        Self {
            inner: Arc::new(Shared { core, http }),
        }
    }

    /// The domain service.
    pub fn core(&self) -> &Tessera {
        &self.inner.core
    }

    /// The HTTP settings.
    pub fn http(&self) -> &HttpConfig {
        &self.inner.http
    }
}
