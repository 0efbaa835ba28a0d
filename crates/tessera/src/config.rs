//! Configuration: one typed tree read from a TOML file and then from
//! `TESSERA_*` environment variables (which win), validated once into a
//! [`Settings`] the rest of the program trusts.
//!
//! A nested key maps to its variable by upper-casing and joining with a
//! double underscore: `session.idle_timeout` is `TESSERA_SESSION__IDLE_TIMEOUT`.
//! Unknown keys and bad values stop the start with a message naming the key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer};
use tessera_core::jwt::TokenPolicy;
use tessera_core::keys::Algorithm;
use tessera_core::password::HashCost;
use tessera_core::rate_limit::RateLimitPolicy;
use tessera_core::session::SessionPolicy;
use tessera_http::cookie::{CookieConfig, SameSite};
use tessera_http::csrf::{OriginPolicy, origin_of};

/// Prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "TESSERA_";

/// A configuration error, naming the key (and variable) at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration error at `{key}`{}: {message}", source_hint(.env_var))]
pub struct ConfigError {
    /// Dotted key path, e.g. `session.idle_timeout`.
    pub key: String,
    /// The environment variable the value came from, if it did.
    pub env_var: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn source_hint(env_var: &Option<String>) -> String {
    env_var
        .as_ref()
        .map(|v| format!(" (from {v})"))
        .unwrap_or_default()
}

impl ConfigError {
    fn at(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            env_var: None,
            message: message.into(),
        }
    }
}

/// A duration written like `90s`, `30m`, `12h` or `14d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub time::Duration);

impl ConfigDuration {
    /// Parses `<digits><unit>` with unit `s`, `m`, `h` or `d`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let split = raw
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{raw}` has no unit; write e.g. 90s, 30m, 12h or 14d"))?;
        let (number, unit) = raw.split_at(split);
        let n: i64 = number
            .parse()
            .map_err(|_| format!("`{raw}` is not a duration like 90s, 30m, 12h or 14d"))?;
        let seconds_per_unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => return Err(format!("`{raw}` has an unknown unit; use s, m, h or d")),
        };
        let seconds = n
            .checked_mul(seconds_per_unit)
            .filter(|s| *s <= 10 * 365 * 86_400)
            .ok_or_else(|| format!("`{raw}` is longer than ten years"))?;
        Ok(Self(time::Duration::seconds(seconds)))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        ConfigDuration::parse(&raw).map_err(de::Error::custom)
    }
}

/// Accepts a native value or its string form (environment variables are
/// always strings).
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + Deserialize<'de>,
    T::Err: fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OrString<T> {
        Native(T),
        Text(String),
    }
    match OrString::<T>::deserialize(d)? {
        OrString::Native(v) => Ok(v),
        OrString::Text(s) => s.trim().parse().map_err(de::Error::custom),
    }
}

/// A list, or a comma-separated string of items.
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrString::deserialize(d)? {
        ListOrString::List(v) => v,
        ListOrString::Text(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// The configuration file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    listen: String,
    public_url: Option<String>,
    data_dir: PathBuf,
    database_url: Option<String>,
    redis_url: Option<String>,
    redis_prefix: String,
    admin_token: Option<String>,
    introspection_secret: Option<String>,
    #[serde(deserialize_with = "list")]
    allowed_origins: Vec<String>,
    #[serde(deserialize_with = "list")]
    trusted_proxies: Vec<String>,
    log: String,
    session: SessionSection,
    cookie: CookieSection,
    password: PasswordSection,
    token: TokenSection,
    rate_limit: RateLimitSection,
    tls: TlsSection,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TlsSection {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// Certificate chain and private key files (PEM) to serve HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsSection {
    fn validate(self) -> Result<Option<Tls>, ConfigError> {
        match (self.cert, self.key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::at(
                "tls.key",
                "tls.cert is set, so tls.key is needed too",
            )),
            (None, Some(_)) => Err(ConfigError::at(
                "tls.cert",
                "tls.key is set, so tls.cert is needed too",
            )),
            (Some(cert), Some(key)) => {
                for (name, path) in [("tls.cert", &cert), ("tls.key", &key)] {
                    if !path.is_file() {
                        return Err(ConfigError::at(
                            name,
                            format!("{} is not a readable file", path.display()),
                        ));
                    }
                }
                Ok(Some(Tls { cert, key }))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RateLimitSection {
    #[serde(deserialize_with = "lenient")]
    login_attempts: u32,
    window: ConfigDuration,
    #[serde(deserialize_with = "lenient")]
    registrations: u32,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        let policy = RateLimitPolicy::default();
        Self {
            login_attempts: policy.login_attempts,
            window: ConfigDuration(policy.window),
            registrations: policy.registrations,
        }
    }
}

impl RateLimitSection {
    fn validate(self) -> Result<RateLimitPolicy, ConfigError> {
        if !(1..=10_000).contains(&self.login_attempts) {
            return Err(ConfigError::at(
                "rate_limit.login_attempts",
                "must be between 1 and 10000",
            ));
        }
        if self.window.0 < time::Duration::seconds(1) || self.window.0 > time::Duration::days(1) {
            return Err(ConfigError::at(
                "rate_limit.window",
                "must be between 1s and 1d",
            ));
        }
        if !(1..=1_000_000).contains(&self.registrations) {
            return Err(ConfigError::at(
                "rate_limit.registrations",
                "must be between 1 and 1000000",
            ));
        }
        Ok(RateLimitPolicy {
            login_attempts: self.login_attempts,
            window: self.window.0,
            registrations: self.registrations,
        })
    }
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
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            log: "info".into(),
            session: SessionSection::default(),
            cookie: CookieSection::default(),
            password: PasswordSection::default(),
            token: TokenSection::default(),
            rate_limit: RateLimitSection::default(),
            tls: TlsSection::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TokenSection {
    algorithm: String,
    audience: Option<String>,
    access_ttl: ConfigDuration,
    refresh_idle_ttl: ConfigDuration,
    refresh_absolute_ttl: ConfigDuration,
    refresh_reuse_grace: ConfigDuration,
}

impl Default for TokenSection {
    fn default() -> Self {
        let policy = TokenPolicy::new("");
        Self {
            algorithm: "EdDSA".into(),
            audience: None,
            access_ttl: ConfigDuration(policy.access_ttl),
            refresh_idle_ttl: ConfigDuration(policy.refresh_idle_ttl),
            refresh_absolute_ttl: ConfigDuration(policy.refresh_absolute_ttl),
            refresh_reuse_grace: ConfigDuration(policy.refresh_reuse_grace),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SessionSection {
    idle_timeout: ConfigDuration,
    absolute_timeout: ConfigDuration,
    remember_me_timeout: ConfigDuration,
}

impl Default for SessionSection {
    fn default() -> Self {
        let policy = SessionPolicy::default();
        Self {
            idle_timeout: ConfigDuration(policy.idle_timeout),
            absolute_timeout: ConfigDuration(policy.absolute_timeout),
            remember_me_timeout: ConfigDuration(policy.remember_me_timeout),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CookieSection {
    name: String,
    #[serde(deserialize_with = "lenient")]
    secure: bool,
    same_site: String,
}

impl Default for CookieSection {
    fn default() -> Self {
        Self {
            name: "__Host-tessera".into(),
            secure: true,
            same_site: "lax".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PasswordSection {
    #[serde(deserialize_with = "lenient")]
    memory_kib: u32,
    #[serde(deserialize_with = "lenient")]
    iterations: u32,
    #[serde(deserialize_with = "lenient")]
    parallelism: u32,
    #[serde(deserialize_with = "lenient")]
    workers: usize,
}

impl Default for PasswordSection {
    fn default() -> Self {
        let cost = HashCost::default();
        Self {
            memory_kib: cost.memory_kib,
            iterations: cost.iterations,
            parallelism: cost.parallelism,
            workers: 0,
        }
    }
}

/// Where data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by every node.
    Postgres(String),
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
    audience_configured: bool,
    /// Where the embedded store and generated keys live.
    pub data_dir: PathBuf,
    /// The store.
    pub database: Database,
    /// Redis, when several nodes share state: `(url, key prefix)`.
    pub redis: Option<(String, String)>,
    /// Bearer secret of the admin API.
    pub admin_token: Option<String>,
    /// Bearer secret for introspection and the revocation feed.
    pub introspection_secret: Option<String>,
    /// Token settings (issuer = `public_url`).
    pub tokens: TokenPolicy,
    /// Algorithm of new signing keys.
    pub algorithm: Algorithm,
    /// Brute-force limits on sign-in.
    pub rate_limit: RateLimitPolicy,
    /// HTTPS, when configured.
    pub tls: Option<Tls>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Log filter directive (`info`, `tessera=debug,warn`, ...).
    pub log: String,
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
}

impl Settings {
    /// Reads `file` (if any) and the environment, then validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
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
        let from_env = overlay_env(&mut tree, env)?;
        let parsed: FileConfig = serde_path_to_error::deserialize(toml::Value::Table(tree))
            .map_err(|e| {
                let mut key = e.path().to_string();
                let message = e.inner().to_string();
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
                }
                let env_var = from_env.get(&key).cloned();
                ConfigError {
                    key,
                    env_var,
                    message,
                }
            })?;
        parsed.validate().map_err(|mut e| {
            e.env_var = from_env.get(&e.key).cloned();
            e
        })
    }
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
        if let Ok(origins) = OriginPolicy::new(Some(&self.public_url), &self.allowed_origins) {
            self.origins = origins;
        }
    }
}

/// Writes `TESSERA_*` variables into the tree as strings; returns which
/// dotted keys came from which variable.
fn overlay_env(
    tree: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut origins = BTreeMap::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let key = path.join(".");
        if path.iter().any(String::is_empty) {
            return Err(ConfigError {
                key,
                env_var: Some(name),
                message: "malformed variable name".into(),
            });
        }
        let Some((leaf, parents)) = path.split_last() else {
            continue;
        };
        let mut table = &mut *tree;
        for parent in parents {
            let entry = table
                .entry(parent.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(ConfigError {
                        key,
                        env_var: Some(name),
                        message: format!("`{parent}` is not a section"),
                    });
                }
            };
        }
        table.insert(leaf.clone(), toml::Value::String(value));
        origins.insert(key, name);
    }
    Ok(origins)
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
        let database = match self.database_url.as_deref() {
            None => Database::Sqlite(self.data_dir.join("tessera.db")),
            Some(url) => parse_database_url(url)?,
        };

        for (key, secret) in [
            ("admin_token", &self.admin_token),
            ("introspection_secret", &self.introspection_secret),
        ] {
            if let Some(secret) = secret
                && secret.chars().count() < 32
            {
                return Err(ConfigError::at(
                    key,
                    "must be at least 32 characters (e.g. `openssl rand -base64 32`)",
                ));
            }
        }
        let (tokens, algorithm) = self.token.validate(&public_url)?;
        let rate_limit = self.rate_limit.validate()?;
        let tls = self.tls.validate()?;
        let redis = match self.redis_url {
            None => None,
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
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

        let session = self.session.validate()?;
        let cookie = self.cookie.validate()?;
        let origins = OriginPolicy::new(Some(&public_url), &self.allowed_origins)
            .map_err(|e| ConfigError::at("allowed_origins", e))?;
        let (hash_cost, hash_workers) = self.password.validate()?;

        Ok(Settings {
            listen,
            public_url,
            public_url_configured,
            allowed_origins,
            audience_configured,
            data_dir: self.data_dir,
            database,
            redis,
            admin_token: self.admin_token,
            introspection_secret: self.introspection_secret,
            tokens,
            algorithm,
            rate_limit,
            tls,
            trusted_proxies,
            log: self.log,
            session,
            cookie,
            origins,
            hash_cost,
            hash_workers,
        })
    }
}

fn parse_database_url(url: &str) -> Result<Database, ConfigError> {
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
        return Ok(Database::Postgres(url.to_owned()));
    }
    Err(ConfigError::at(
        "database_url",
        "must be a sqlite:// or postgres:// URL",
    ))
}

impl SessionSection {
    fn validate(self) -> Result<SessionPolicy, ConfigError> {
        let positive = |key: &str, d: ConfigDuration| {
            if d.0.is_positive() {
                Ok(d.0)
            } else {
                Err(ConfigError::at(key, "must be longer than zero"))
            }
        };
        let policy = SessionPolicy {
            idle_timeout: positive("session.idle_timeout", self.idle_timeout)?,
            absolute_timeout: positive("session.absolute_timeout", self.absolute_timeout)?,
            remember_me_timeout: positive("session.remember_me_timeout", self.remember_me_timeout)?,
        };
        if policy.absolute_timeout < policy.idle_timeout {
            return Err(ConfigError::at(
                "session.absolute_timeout",
                "must not be shorter than session.idle_timeout",
            ));
        }
        Ok(policy)
    }
}

impl TokenSection {
    fn validate(self, public_url: &str) -> Result<(TokenPolicy, Algorithm), ConfigError> {
        let algorithm = Algorithm::parse(&self.algorithm).ok_or_else(|| {
            ConfigError::at(
                "token.algorithm",
                format!(
                    "`{}` is not one of EdDSA, ES256, RS256, HS256",
                    self.algorithm
                ),
            )
        })?;
        let within = |key: &str, d: ConfigDuration, min: time::Duration, max: time::Duration| {
            if d.0 < min || d.0 > max {
                Err(ConfigError::at(
                    key,
                    format!("must be between {min} and {max}"),
                ))
            } else {
                Ok(d.0)
            }
        };
        let mut policy = TokenPolicy::new(public_url);
        if let Some(audience) = self.audience {
            if audience.trim().is_empty() {
                return Err(ConfigError::at("token.audience", "must not be empty"));
            }
            policy.audience = audience;
        }
        policy.access_ttl = within(
            "token.access_ttl",
            self.access_ttl,
            time::Duration::seconds(30),
            time::Duration::hours(24),
        )?;
        policy.refresh_idle_ttl = within(
            "token.refresh_idle_ttl",
            self.refresh_idle_ttl,
            time::Duration::minutes(1),
            time::Duration::days(3650),
        )?;
        policy.refresh_absolute_ttl = within(
            "token.refresh_absolute_ttl",
            self.refresh_absolute_ttl,
            time::Duration::minutes(1),
            time::Duration::days(3650),
        )?;
        if policy.refresh_absolute_ttl < policy.refresh_idle_ttl {
            return Err(ConfigError::at(
                "token.refresh_absolute_ttl",
                "must not be shorter than token.refresh_idle_ttl",
            ));
        }
        policy.refresh_reuse_grace = within(
            "token.refresh_reuse_grace",
            self.refresh_reuse_grace,
            time::Duration::ZERO,
            time::Duration::minutes(5),
        )?;
        Ok((policy, algorithm))
    }
}

impl CookieSection {
    fn validate(self) -> Result<CookieConfig, ConfigError> {
        // RFC 6265 cookie-name is an RFC 2616 token.
        let is_token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if self.name.is_empty() || !self.name.chars().all(is_token_char) {
            return Err(ConfigError::at(
                "cookie.name",
                format!("`{}` is not a valid cookie name", self.name),
            ));
        }
        let same_site = match self.same_site.to_ascii_lowercase().as_str() {
            "lax" => SameSite::Lax,
            "strict" => SameSite::Strict,
            "none" => SameSite::None,
            other => {
                return Err(ConfigError::at(
                    "cookie.same_site",
                    format!("`{other}` is not one of lax, strict, none"),
                ));
            }
        };
        if same_site == SameSite::None && !self.secure {
            return Err(ConfigError::at(
                "cookie.same_site",
                "`none` needs cookie.secure = true (browsers refuse it otherwise)",
            ));
        }
        if self.secure && self.name.starts_with("__Host-") && self.name.len() == "__Host-".len() {
            return Err(ConfigError::at(
                "cookie.name",
                "the name needs something after `__Host-`",
            ));
        }
        Ok(CookieConfig {
            name: self.name,
            secure: self.secure,
            same_site,
        })
    }
}

impl PasswordSection {
    fn validate(self) -> Result<(HashCost, usize), ConfigError> {
        if !(1..=16).contains(&self.parallelism) {
            return Err(ConfigError::at(
                "password.parallelism",
                "must be between 1 and 16",
            ));
        }
        if !(8 * self.parallelism..=4 * 1024 * 1024).contains(&self.memory_kib) {
            return Err(ConfigError::at(
                "password.memory_kib",
                "must be between 8 × parallelism and 4194304 (4 GiB)",
            ));
        }
        if !(1..=64).contains(&self.iterations) {
            return Err(ConfigError::at(
                "password.iterations",
                "must be between 1 and 64",
            ));
        }
        if self.workers > 256 {
            return Err(ConfigError::at(
                "password.workers",
                "must be at most 256 (0: one per core)",
            ));
        }
        let workers = if self.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.workers
        };
        Ok((
            HashCost {
                memory_kib: self.memory_kib,
                iterations: self.iterations,
                parallelism: self.parallelism,
            },
            workers,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load_toml(text: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError::at("test", e.to_string()))?;
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, text).map_err(|e| ConfigError::at("test", e.to_string()))?;
        Settings::load(Some(&path), env(vars))
    }

    #[test]
    fn defaults_need_no_configuration() -> Result<(), ConfigError> {
        let s = Settings::load(None, env(&[("PATH", "/bin")]))?;
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(
            s.database,
            Database::Sqlite(PathBuf::from("tessera-data/tessera.db"))
        );
        assert_eq!(s.session, SessionPolicy::default());
        assert_eq!(s.cookie.name, "__Host-tessera");
        assert!(s.cookie.secure);
        assert_eq!(s.hash_cost, HashCost::default());
        assert_eq!(s.algorithm, Algorithm::EdDSA);
        assert_eq!(s.tokens.issuer, "http://127.0.0.1:8080");
        assert_eq!(s.tokens.audience, "http://127.0.0.1:8080");
        assert_eq!(s.tokens.access_ttl, time::Duration::minutes(10));
        assert_eq!(s.tokens.refresh_idle_ttl, time::Duration::days(14));
        assert_eq!(s.tokens.refresh_absolute_ttl, time::Duration::days(90));
        assert_eq!(s.tokens.refresh_reuse_grace, time::Duration::seconds(10));
        Ok(())
    }

    #[test]
    fn file_then_environment_which_wins() -> Result<(), ConfigError> {
        let s = load_toml(
            "listen = \"127.0.0.1:9000\"\n[session]\nidle_timeout = \"10m\"\nabsolute_timeout = \"2h\"\n",
            &[
                ("TESSERA_SESSION__IDLE_TIMEOUT", "90s"),
                ("TESSERA_COOKIE__SECURE", "false"),
            ],
        )?;
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.session.idle_timeout, time::Duration::seconds(90));
        assert_eq!(s.session.absolute_timeout, time::Duration::hours(2));
        assert!(!s.cookie.secure);
        assert_eq!(s.cookie.effective_name(), "tessera");
        Ok(())
    }

    #[test]
    fn an_ephemeral_port_sets_the_public_url_once_bound() -> Result<(), ConfigError> {
        let mut s = Settings::load(None, env(&[("TESSERA_LISTEN", "127.0.0.1:0")]))?;
        s.bind_public_url(
            "127.0.0.1:41234"
                .parse()
                .map_err(|_| ConfigError::at("t", "addr"))?,
        );
        assert_eq!(s.public_url, "http://127.0.0.1:41234");
        assert_eq!(s.tokens.issuer, s.public_url);
        assert_eq!(s.tokens.audience, s.public_url);
        assert_eq!(
            s.origins.public_origin.as_deref(),
            Some("http://127.0.0.1:41234")
        );
        let mut s = Settings::load(
            None,
            env(&[
                ("TESSERA_LISTEN", "127.0.0.1:0"),
                ("TESSERA_PUBLIC_URL", "https://auth.example"),
            ]),
        )?;
        s.bind_public_url(
            "127.0.0.1:41234"
                .parse()
                .map_err(|_| ConfigError::at("t", "addr"))?,
        );
        assert_eq!(
            s.tokens.issuer, "https://auth.example",
            "a configured URL stays"
        );
        Ok(())
    }

    #[test]
    fn durations_parse_units() {
        assert_eq!(
            ConfigDuration::parse("90s"),
            Ok(ConfigDuration(time::Duration::seconds(90)))
        );
        assert_eq!(
            ConfigDuration::parse("30m"),
            Ok(ConfigDuration(time::Duration::minutes(30)))
        );
        assert_eq!(
            ConfigDuration::parse("12h"),
            Ok(ConfigDuration(time::Duration::hours(12)))
        );
        assert_eq!(
            ConfigDuration::parse("14d"),
            Ok(ConfigDuration(time::Duration::days(14)))
        );
        for bad in [
            "",
            "30",
            "m",
            "30 minutes",
            "-5m",
            "1.5h",
            "99999999999999999999d",
            "5y",
        ] {
            assert!(ConfigDuration::parse(bad).is_err(), "{bad} parsed");
        }
    }

    fn error_key(result: Result<Settings, ConfigError>) -> (String, Option<String>, String) {
        match result {
            Ok(_) => ("<no error>".into(), None, String::new()),
            Err(e) => (e.key.clone(), e.env_var.clone(), e.to_string()),
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let (key, _, message) = error_key(load_toml("[session]\nidle_timout = \"5m\"\n", &[]));
        assert_eq!(key, "session.idle_timout");
        assert!(message.contains("session.idle_timout"), "{message}");
        let (key, var, _) = error_key(Settings::load(None, env(&[("TESSERA_FROBNICATE", "1")])));
        assert_eq!(key, "frobnicate");
        assert_eq!(var.as_deref(), Some("TESSERA_FROBNICATE"));
        let (key, _, _) = error_key(load_toml("colour = \"blue\"\n", &[]));
        assert_eq!(key, "colour");
    }

    #[test]
    fn bad_values_are_named() {
        // (file, environment, key the error must name)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                "",
                &[("TESSERA_SESSION__IDLE_TIMEOUT", "soon")],
                "session.idle_timeout",
            ),
            ("", &[("TESSERA_LISTEN", "nowhere")], "listen"),
            ("", &[("TESSERA_COOKIE__SECURE", "maybe")], "cookie.secure"),
            (
                "",
                &[("TESSERA_COOKIE__SAME_SITE", "sometimes")],
                "cookie.same_site",
            ),
            ("", &[("TESSERA_COOKIE__NAME", "bad name;")], "cookie.name"),
            ("", &[("TESSERA_ADMIN_TOKEN", "short")], "admin_token"),
            ("", &[("TESSERA_PUBLIC_URL", "ftp://x")], "public_url"),
            (
                "",
                &[("TESSERA_ALLOWED_ORIGINS", "https://ok.example, nope")],
                "allowed_origins",
            ),
            (
                "",
                &[("TESSERA_PASSWORD__MEMORY_KIB", "1")],
                "password.memory_kib",
            ),
            ("", &[("TESSERA_DATABASE_URL", "mysql://x")], "database_url"),
            ("", &[("TESSERA_REDIS_URL", "http://x")], "redis_url"),
            (
                "",
                &[("TESSERA_RATE_LIMIT__LOGIN_ATTEMPTS", "0")],
                "rate_limit.login_attempts",
            ),
            (
                "",
                &[("TESSERA_RATE_LIMIT__LOGIN_ATTEMPTS", "many")],
                "rate_limit.login_attempts",
            ),
            (
                "",
                &[("TESSERA_RATE_LIMIT__WINDOW", "2d")],
                "rate_limit.window",
            ),
            (
                "",
                &[("TESSERA_RATE_LIMIT__REGISTRATIONS", "0")],
                "rate_limit.registrations",
            ),
            (
                "",
                &[("TESSERA_TOKEN__ALGORITHM", "none")],
                "token.algorithm",
            ),
            (
                "",
                &[("TESSERA_TOKEN__ALGORITHM", "hs256")],
                "token.algorithm",
            ),
            (
                "",
                &[("TESSERA_TOKEN__ACCESS_TTL", "2d")],
                "token.access_ttl",
            ),
            (
                "",
                &[("TESSERA_TOKEN__REFRESH_IDLE_TTL", "100d")],
                "token.refresh_absolute_ttl",
            ),
            (
                "",
                &[("TESSERA_INTROSPECTION_SECRET", "short")],
                "introspection_secret",
            ),
            (
                "[session]\nidle_timeout = \"2h\"\nabsolute_timeout = \"1h\"\n",
                &[],
                "session.absolute_timeout",
            ),
            (
                "[session]\nidle_timeout = \"0s\"\n",
                &[],
                "session.idle_timeout",
            ),
            ("[session]\nidle_timeout = 5\n", &[], "session.idle_timeout"),
            ("session = 5\n", &[], "session"),
            (
                "listen = \"127.0.0.1:1\"\n",
                &[("TESSERA_LISTEN__PORT", "1")],
                "listen.port",
            ),
        ];
        for (file, vars, expected) in cases {
            let (key, _, message) = error_key(load_toml(file, vars));
            assert_eq!(&key, expected, "{file:?} {vars:?}: {message}");
        }
    }

    #[test]
    fn env_origin_is_reported() {
        let (_, var, message) = error_key(Settings::load(
            None,
            env(&[("TESSERA_SESSION__IDLE_TIMEOUT", "x")]),
        ));
        assert_eq!(var.as_deref(), Some("TESSERA_SESSION__IDLE_TIMEOUT"));
        assert!(
            message.contains("TESSERA_SESSION__IDLE_TIMEOUT"),
            "{message}"
        );
    }

    #[test]
    fn lists_come_from_arrays_or_commas() -> Result<(), ConfigError> {
        let s = load_toml("allowed_origins = [\"https://a.example\"]\n", &[])?;
        assert_eq!(s.origins.allowed, ["https://a.example"]);
        let s = Settings::load(
            None,
            env(&[(
                "TESSERA_ALLOWED_ORIGINS",
                "https://a.example, https://b.example:8443",
            )]),
        )?;
        assert_eq!(
            s.origins.allowed,
            ["https://a.example", "https://b.example:8443"]
        );
        Ok(())
    }

    #[test]
    fn invalid_toml_names_the_file() {
        let (key, _, message) = error_key(load_toml("this is = = not toml", &[]));
        assert_eq!(key, "--config");
        assert!(message.contains("not valid TOML"), "{message}");
    }
}
