//! Shared state handed to every handler.

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::SecretString;
use tessera_core::Tessera;

use crate::allowed_hosts::AllowedHosts;
use crate::cookie::CookieConfig;
use crate::csrf::OriginPolicy;
use crate::middleware::drain::Draining;
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
    /// Bearer secret of `/metrics`, if configured (never printed); the
    /// admin token is accepted there too.
    pub metrics_token: Option<SecretString>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Send `Strict-Transport-Security` (when serving HTTPS).
    pub hsts: bool,
    /// Longest a request may take, body upload included, before a 408
    /// (default 30 s).
    pub request_timeout: Option<std::time::Duration>,
    /// Set on the way to a shutdown (see [`Draining`]).
    pub draining: Draining,
}

/// Forward authentication (`GET /v1/auth/forward`) and the hosts that
/// signing in may send the browser back to.
#[derive(Debug, Clone, Default)]
pub struct ForwardAuthConfig {
    /// `<public_url>/login`, where a browser is sent to sign in (none: never
    /// redirected, always 401).
    pub login_url: Option<String>,
    /// `forward_auth.allowed_hosts`.
    pub allowed_hosts: AllowedHosts,
}

impl ForwardAuthConfig {
    /// Sign-in on `public_url`'s pages, returning to `allowed_hosts`.
    pub fn new(public_url: &str, allowed_hosts: AllowedHosts) -> Self {
        Self {
            login_url: Some(format!("{}/login", public_url.trim_end_matches('/'))),
            allowed_hosts,
        }
    }
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
    forward_auth: ForwardAuthConfig,
    /// The pages' stylesheet and icon, made from `ui` once.
    assets: Assets,
}

impl AppState {
    /// Bundles the domain service and the HTTP settings.
    /// The web pages look as by default; see [`Self::with_ui`].
    /// Forward authentication answers 401 only and `return_to` takes paths
    /// only; see [`Self::with_forward_auth`].
    pub fn new(core: Arc<Tessera>, http: HttpConfig) -> Self {
        Self::build(
            core,
            http,
            UiConfig::default(),
            ForwardAuthConfig::default(),
        )
    }

    /// The same state with the web pages' product name and accent colour.
    pub fn with_ui(self, ui: UiConfig) -> Self {
        let forward_auth = self.inner.forward_auth.clone();
        Self::build(
            self.inner.core.clone(),
            self.inner.http.clone(),
            ui,
            forward_auth,
        )
    }

    /// The same state with forward authentication's sign-in redirect and
    /// allowed hosts.
    pub fn with_forward_auth(self, forward_auth: ForwardAuthConfig) -> Self {
        Self::build(
            self.inner.core.clone(),
            self.inner.http.clone(),
            self.inner.ui.clone(),
            forward_auth,
        )
    }

    fn build(
        core: Arc<Tessera>,
        http: HttpConfig,
        ui: UiConfig,
        forward_auth: ForwardAuthConfig,
    ) -> Self {
        let assets = Assets::new(ui.accent);
        Self {
            inner: Arc::new(Shared {
                core,
                http,
                ui,
                forward_auth,
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

    /// Forward authentication's settings.
    pub fn forward_auth(&self) -> &ForwardAuthConfig {
        &self.inner.forward_auth
    }

    /// The web pages' static files.
    pub fn assets(&self) -> &Assets {
        &self.inner.assets
    }
}
