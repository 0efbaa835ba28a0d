//! Configuration: one typed tree read from a TOML file and then from
//! `TESSERA_*` environment variables (which win), validated once into a
//! [`Settings`] the rest of the program trusts.
//!
//! A nested key maps to its variable by upper-casing and joining with a
//! double underscore: `session.idle_timeout` is `TESSERA_SESSION__IDLE_TIMEOUT`.
//! Unknown keys and bad values stop the start with a message naming the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tessera_core::jwt::TokenPolicy;
use tessera_core::key_wrap::KeyEncryptionKey;
use tessera_core::keys::Algorithm;
use tessera_core::password::HashCost;
use tessera_core::rate_limit::RateLimitPolicy;
use tessera_core::session::SessionPolicy;
use tessera_http::allowed_hosts::AllowedHosts;
use tessera_http::cookie::CookieConfig;
use tessera_http::csrf::{OriginPolicy, origin_of};
use zeroize::Zeroizing;

mod duration;
mod effective;
mod env;
mod forward_auth;
mod keys;
pub mod redact;
mod sections;
mod sources;
#[cfg(test)]
mod tests;
mod ui;

pub use duration::ConfigDuration;
pub use env::{CONFIG_FILE_VAR, ENV_PREFIX, env_var, process_env};
pub use keys::keys;
pub use sections::Tls;

use env::{list, overlay_env};
use sections::{
    CookieSection, PasswordSection, RateLimitSection, SessionSection, TlsSection, TokenSection,
};
use sources::Sources;

/// Longest `shutdown_drain`: past this, an orchestrator has long given up.
const MAX_SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(600);

/// A configuration error, naming the key and where its value came from.
#[derive(Debug, thiserror::Error)]
#[error("configuration error at `{key}`{}: {message}", source_hint(.env_var, .file))]
pub struct ConfigError {
    /// Dotted key path, e.g. `session.idle_timeout`.
    pub key: String,
    /// The environment variable the value came from, if it did.
    pub env_var: Option<String>,
    /// The configuration file the value came from, if it did (and no
    /// variable overrode it).
    pub file: Option<PathBuf>,
    /// What is wrong.
    pub message: String,
}

fn source_hint(env_var: &Option<String>, file: &Option<PathBuf>) -> String {
    match (env_var, file) {
        (Some(var), _) => format!(" (from {var})"),
        (None, Some(file)) => format!(" (in {})", file.display()),
        (None, None) => String::new(),
    }
}

impl ConfigError {
    fn at(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            env_var: None,
            file: None,
            message: message.into(),
        }
    }
}

/// The configuration file's shape. Serialised only for `tessera config
/// check`: a secret field must say how it is redacted (a `SecretString`
/// cannot be serialised otherwise).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    listen: String,
    public_url: Option<String>,
    data_dir: PathBuf,
    #[serde(serialize_with = "redact::secret_url")]
    database_url: Option<SecretString>,
    #[serde(serialize_with = "redact::secret_url")]
    redis_url: Option<SecretString>,
    redis_prefix: String,
    #[serde(serialize_with = "redact::secret")]
    admin_token: Option<SecretString>,
    #[serde(serialize_with = "redact::secret")]
    introspection_secret: Option<SecretString>,
    #[serde(serialize_with = "redact::secret")]
    metrics_token: Option<SecretString>,
    #[serde(serialize_with = "redact::secret")]
    key_encryption_key: Option<SecretString>,
    key_encryption_key_file: Option<PathBuf>,
    #[serde(deserialize_with = "list")]
    allowed_origins: Vec<String>,
    #[serde(deserialize_with = "list")]
    trusted_proxies: Vec<String>,
    #[serde(deserialize_with = "list")]
    hosts: Vec<String>,
    log: String,
    shutdown_drain: ConfigDuration,
    log_format: LogFormat,
    session: SessionSection,
    cookie: CookieSection,
    password: PasswordSection,
    token: TokenSection,
    rate_limit: RateLimitSection,
    tls: TlsSection,
    ui: ui::UiSection,
    forward_auth: forward_auth::ForwardAuthSection,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            data_dir: PathBuf::from("tessera-data"),
            database_url: None,
            redis_url: None,
            redis_prefix: "tessera:".into(),
            admin_token: None,
            introspection_secret: None,
            metrics_token: None,
            key_encryption_key: None,
            key_encryption_key_file: None,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            hosts: Vec::new(),
            log: "info".into(),
            shutdown_drain: ConfigDuration(time::Duration::ZERO),
            log_format: LogFormat::Text,
            session: SessionSection::default(),
            cookie: CookieSection::default(),
            password: PasswordSection::default(),
            token: TokenSection::default(),
            rate_limit: RateLimitSection::default(),
            tls: TlsSection::default(),
            ui: ui::UiSection::default(),
            forward_auth: forward_auth::ForwardAuthSection::default(),
        }
    }
}

/// How log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

/// Where data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// The embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by every node (its URL may hold a
    /// password: never printed).
    Postgres(SecretString),
}

impl Database {
    /// The embedded store's file, or `None` for PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The URL clients reach this server at (no trailing slash).
    pub public_url: String,
    /// Whether `public_url` was configured (else it follows the listen address).
    pub public_url_configured: bool,
    allowed_origins: Vec<String>,
    hosts: Vec<String>,
    audience_configured: bool,
    /// Where the embedded store and generated keys live.
    pub data_dir: PathBuf,
    /// The store.
    pub database: Database,
    /// Redis, when several nodes share state: `(url, key prefix)`; the URL
    /// may hold a password: never printed.
    pub redis: Option<(SecretString, String)>,
    /// Bearer secret of the admin API.
    pub admin_token: Option<SecretString>,
    /// Bearer secret for introspection and the revocation feed.
    pub introspection_secret: Option<SecretString>,
    /// Bearer secret for `/metrics`.
    pub metrics_token: Option<SecretString>,
    /// The key that seals signing keys at rest, when configured (else the
    /// embedded store keeps a generated one in the data directory).
    pub key_encryption_key: Option<KeyEncryptionKey>,
    /// Token settings (issuer = `public_url`).
    pub tokens: TokenPolicy,
    /// Algorithm of new signing keys.
    pub algorithm: Algorithm,
    /// Whether the password grant is accepted (`token.password_grant`).
    pub password_grant: bool,
    /// Brute-force limits on sign-in.
    pub rate_limit: RateLimitPolicy,
    /// HTTPS, when configured.
    pub tls: Option<Tls>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Log filter directive (`info`, `tessera=debug,warn`, ...).
    pub log: String,
    /// How long a stopping node keeps serving while it drains (`/readyz`
    /// 503, `Connection: close`) before it stops accepting connections.
    pub shutdown_drain: std::time::Duration,
    /// Text or JSON lines.
    pub log_format: LogFormat,
    /// Cookie session lifetimes.
    pub session: SessionPolicy,
    /// Session cookie attributes.
    pub cookie: CookieConfig,
    /// Origins allowed to make cookie-authenticated requests.
    pub origins: OriginPolicy,
    /// Argon2id cost.
    pub hash_cost: HashCost,
    /// Concurrent password hashes (0: one per core).
    pub hash_workers: usize,
    /// How the web pages look.
    pub ui: tessera_http::pages::ui::UiConfig,
    /// Hosts that forward authentication and `/login` may send the browser
    /// back to (`forward_auth.allowed_hosts`).
    pub forward_auth_hosts: AllowedHosts,
}

impl Settings {
    /// Reads `file` (if any) and the environment, then validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (parsed, sources) = read(file, env)?;
        parsed.validate().map_err(|e| sources.attribute(e))
    }

    /// Loads as [`Settings::load`] does (what `serve` will run with), and
    /// describes the effective configuration as TOML, each value with where
    /// it came from and every secret redacted (`tessera config check`).
    pub fn check(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, String), ConfigError> {
        let (parsed, sources) = read(file, env)?;
        let effective = toml::Table::try_from(&parsed).map_err(|e| {
            ConfigError::at(
                "--config",
                format!("cannot describe the configuration: {e}"),
            )
        })?;
        let settings = parsed.validate().map_err(|e| sources.attribute(e))?;
        let text = effective::describe(effective, &settings, &sources);
        Ok((settings, text))
    }
}

/// The file, then the environment over it, into the file's shape (not yet
/// validated), with where each key came from.
fn read(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(FileConfig, Sources), ConfigError> {
    let mut tree = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::at("--config", format!("cannot read {}: {e}", path.display()))
            })?;
            text.parse::<toml::Table>().map_err(|e| {
                ConfigError::at(
                    "--config",
                    format!("{} is not valid TOML: {e}", path.display()),
                )
            })?
        }
        None => toml::Table::new(),
    };
    let file_keys = sources::keys_of(&tree);
    let from_env = overlay_env(&mut tree, env)?;
    let sources = Sources::new(file, file_keys, from_env);
    let parsed: FileConfig =
        serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|e| {
            let mut key = e.path().to_string();
            let mut message = e.inner().to_string();
            // For an unknown key the path names its parent; name the key itself.
            if let Some(unknown) = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
            {
                if key == "." {
                    key = unknown.to_owned();
                } else if key.rsplit('.').next() != Some(unknown) {
                    key = format!("{key}.{unknown}");
                }
                if let Some(meant) = keys::meant(&key) {
                    message = format!(
                        "unknown key; did you mean `{meant}` (variable {})?",
                        env_var(&meant)
                    );
                }
            }
            sources.attribute(ConfigError::at(&key, message))
        })?;
    Ok((parsed, sources))
}

impl Settings {
    /// Once the listener is bound: an unconfigured `public_url` follows the
    /// address actually bound (which differs from `listen` for port 0), and
    /// with it the token issuer, the default audience and the own origin.
    pub fn bind_public_url(&mut self, bound: SocketAddr) {
        if self.public_url_configured || bound == self.listen {
            return;
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.public_url = format!("{scheme}://{bound}");
        self.tokens.issuer = self.public_url.clone();
        if !self.audience_configured {
            self.tokens.audience = self.public_url.clone();
        }
        if let Ok(origins) = OriginPolicy::new(Some(&self.public_url), &self.allowed_origins)
            .and_then(|o| o.with_hosts(&self.hosts))
        {
            self.origins = origins;
        }
    }
}

impl FileConfig {
    fn validate(self) -> Result<Settings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            ConfigError::at(
                "listen",
                format!("`{}` is not an address:port", self.listen),
            )
        })?;

        let public_url_configured = self.public_url.is_some();
        if !public_url_configured && listen.ip().is_unspecified() {
            // Requests are answered only for public_url's host, and tokens
            // name it as their issuer: `0.0.0.0` is neither.
            return Err(ConfigError::at(
                "public_url",
                format!(
                    "must be set when listening on all interfaces ({listen}): the URL clients reach this server at"
                ),
            ));
        }
        let audience_configured = self.token.audience.is_some();
        let allowed_origins = self.allowed_origins.clone();
        let public_url = match self.public_url {
            Some(url) => {
                origin_of(&url).ok_or_else(|| {
                    ConfigError::at("public_url", format!("`{url}` is not an http(s) URL"))
                })?;
                url.trim_end_matches('/').to_owned()
            }
            None if self.tls.cert.is_some() => format!("https://{listen}"),
            None => format!("http://{listen}"),
        };

        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::at("data_dir", "must not be empty"));
        }
        let database = match &self.database_url {
            None => Database::Sqlite(self.data_dir.join("tessera.db")),
            Some(url) => parse_database_url(url)?,
        };
        let key_encryption_key =
            key_encryption_key(self.key_encryption_key, self.key_encryption_key_file)?;

        for (key, secret) in [
            ("admin_token", &self.admin_token),
            ("introspection_secret", &self.introspection_secret),
            ("metrics_token", &self.metrics_token),
        ] {
            if let Some(secret) = secret
                && secret.expose_secret().chars().count() < 32
            {
                return Err(ConfigError::at(
                    key,
                    "must be at least 32 characters (e.g. `openssl rand -base64 32`)",
                ));
            }
        }
        let password_grant = self.token.password_grant;
        let (tokens, algorithm) = self.token.validate(&public_url)?;
        let rate_limit = self.rate_limit.validate()?;
        let tls = self.tls.validate()?;
        let redis = match self.redis_url {
            None => None,
            Some(url)
                if url.expose_secret().starts_with("redis://")
                    || url.expose_secret().starts_with("rediss://") =>
            {
                if self.redis_prefix.is_empty()
                    || self.redis_prefix.chars().any(char::is_whitespace)
                {
                    return Err(ConfigError::at(
                        "redis_prefix",
                        "must be non-empty, without white space",
                    ));
                }
                Some((url, self.redis_prefix))
            }
            Some(_) => {
                return Err(ConfigError::at(
                    "redis_url",
                    "must be a redis:// or rediss:// URL",
                ));
            }
        };

        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<IpAddr>().map_err(|_| {
                    ConfigError::at("trusted_proxies", format!("`{p}` is not an IP address"))
                })
            })
            .collect::<Result<_, _>>()?;

        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| {
            ConfigError::at("log", format!("`{}` is not a log filter: {e}", self.log))
        })?;

        let shutdown_drain = std::time::Duration::try_from(self.shutdown_drain.0)
            .ok()
            .filter(|d| *d <= MAX_SHUTDOWN_DRAIN)
            .ok_or_else(|| ConfigError::at("shutdown_drain", "must be between 0s and 10m"))?;
        let session = self.session.validate()?;
        let cookie = self.cookie.validate(&public_url)?;
        let origins = OriginPolicy::new(Some(&public_url), &self.allowed_origins)
            .map_err(|e| ConfigError::at("allowed_origins", e))?
            .with_hosts(&self.hosts)
            .map_err(|e| ConfigError::at("hosts", e))?;
        let (hash_cost, hash_workers) = self.password.validate()?;
        let ui = self.ui.validate()?;
        let forward_auth_hosts = self.forward_auth.validate()?;

        Ok(Settings {
            listen,
            public_url,
            public_url_configured,
            allowed_origins,
            hosts: self.hosts,
            audience_configured,
            data_dir: self.data_dir,
            database,
            redis,
            admin_token: self.admin_token,
            introspection_secret: self.introspection_secret,
            metrics_token: self.metrics_token,
            key_encryption_key,
            tokens,
            algorithm,
            password_grant,
            rate_limit,
            tls,
            trusted_proxies,
            log: self.log,
            shutdown_drain,
            log_format: self.log_format,
            session,
            cookie,
            origins,
            hash_cost,
            hash_workers,
            ui,
            forward_auth_hosts,
        })
    }
}

fn parse_database_url(secret_url: &SecretString) -> Result<Database, ConfigError> {
    let url = secret_url.expose_secret();
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(ConfigError::at(
                "database_url",
                "the SQLite URL names no file",
            ));
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(secret_url.clone()));
    }
    Err(ConfigError::at(
        "database_url",
        "must be a sqlite:// or postgres:// URL",
    ))
}

/// The configured key-encryption key: given inline (base64) or in a file
/// holding the same text, not both.
fn key_encryption_key(
    inline: Option<SecretString>,
    file: Option<PathBuf>,
) -> Result<Option<KeyEncryptionKey>, ConfigError> {
    match (inline, file) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(ConfigError::at(
            "key_encryption_key",
            "key_encryption_key and key_encryption_key_file are both set; set one of them",
        )),
        (Some(text), None) => KeyEncryptionKey::from_base64(text.expose_secret())
            .map(Some)
            .map_err(|e| ConfigError::at("key_encryption_key", e.to_string())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map(Zeroizing::new)
                .map_err(|e| {
                    ConfigError::at(
                        "key_encryption_key_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
            KeyEncryptionKey::from_base64(&text).map(Some).map_err(|e| {
                ConfigError::at(
                    "key_encryption_key_file",
                    format!("the key in {} {e}", path.display()),
                )
            })
        }
    }
}
