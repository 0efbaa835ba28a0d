//! Shared state handed to every handler.

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::SecretString;
use tessera_core::Tessera;

use crate::cookie::CookieConfig;
use crate::csrf::OriginPolicy;
use crate::pages::assets::Assets;
use crate::pages::ui::UiConfig;

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
    ui: UiConfig,
    /// The pages' stylesheet and icon, made from `ui` once.
    assets: Assets,
}

impl AppState {
    /// Bundles the domain service and the HTTP settings.
    /// The web pages look as by default; see [`Self::with_ui`].
    pub fn new(core: Arc<Tessera>, http: HttpConfig) -> Self {
        Self::build(core, http, UiConfig::default())
    }

    /// The same state with the web pages' product name and accent colour.
    pub fn with_ui(self, ui: UiConfig) -> Self {
        Self::build(self.inner.core.clone(), self.inner.http.clone(), ui)
    }

    fn build(core: Arc<Tessera>, http: HttpConfig, ui: UiConfig) -> Self {
        let assets = Assets::new(ui.accent);
        Self {
            inner: Arc::new(Shared {
                core,
                http,
                ui,
                assets,
            }),
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

    /// How the web pages look.
    pub fn ui(&self) -> &UiConfig {
        &self.inner.ui
    }

    /// The web pages' static files.
    pub fn assets(&self) -> &Assets {
        &self.inner.assets
    }
}
