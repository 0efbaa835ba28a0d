//! The sections of the configuration file, each with its defaults and its
//! validation into the settings the program uses.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tessera_core::jwt::TokenPolicy;
use tessera_core::keys::Algorithm;
use tessera_core::password::HashCost;
use tessera_core::rate_limit::RateLimitPolicy;
use tessera_core::session::SessionPolicy;
use tessera_http::cookie::{CookieConfig, SameSite};

use super::env::lenient;
use super::{ConfigDuration, ConfigError};

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TlsSection {
    pub(super) cert: Option<PathBuf>,
    pub(super) key: Option<PathBuf>,
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
    pub(super) fn validate(self) -> Result<Option<Tls>, ConfigError> {
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RateLimitSection {
    #[serde(deserialize_with = "lenient")]
    pub(super) login_attempts: u32,
    pub(super) window: ConfigDuration,
    #[serde(deserialize_with = "lenient")]
    pub(super) registrations: u32,
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
    pub(super) fn validate(self) -> Result<RateLimitPolicy, ConfigError> {
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TokenSection {
    pub(super) algorithm: String,
    pub(super) audience: Option<String>,
    pub(super) access_ttl: ConfigDuration,
    pub(super) refresh_idle_ttl: ConfigDuration,
    pub(super) refresh_absolute_ttl: ConfigDuration,
    pub(super) refresh_reuse_grace: ConfigDuration,
    /// Whether `grant_type=password` is accepted at `/v1/token`.
    pub(super) password_grant: bool,
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
            password_grant: true,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct SessionSection {
    pub(super) idle_timeout: ConfigDuration,
    pub(super) absolute_timeout: ConfigDuration,
    pub(super) remember_me_timeout: ConfigDuration,
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct CookieSection {
    pub(super) name: String,
    #[serde(deserialize_with = "lenient")]
    pub(super) secure: bool,
    pub(super) same_site: String,
    pub(super) domain: Option<String>,
}

impl Default for CookieSection {
    fn default() -> Self {
        let defaults = CookieConfig::default();
        Self {
            name: defaults.name,
            secure: defaults.secure,
            same_site: defaults.same_site.as_str().to_ascii_lowercase(),
            domain: None,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct PasswordSection {
    #[serde(deserialize_with = "lenient")]
    pub(super) memory_kib: u32,
    #[serde(deserialize_with = "lenient")]
    pub(super) iterations: u32,
    #[serde(deserialize_with = "lenient")]
    pub(super) parallelism: u32,
    #[serde(deserialize_with = "lenient")]
    pub(super) workers: usize,
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

impl SessionSection {
    pub(super) fn validate(self) -> Result<SessionPolicy, ConfigError> {
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
    pub(super) fn validate(
        self,
        public_url: &str,
    ) -> Result<(TokenPolicy, Algorithm), ConfigError> {
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
    pub(super) fn validate(self, public_url: &str) -> Result<CookieConfig, ConfigError> {
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
        let cookie = CookieConfig {
            name: self.name,
            secure: self.secure,
            same_site,
            domain: None,
        };
        match self.domain {
            None => Ok(cookie),
            Some(domain) => CookieConfig::check_domain(domain.trim(), public_url)
                .map(|domain| cookie.with_domain(domain))
                .map_err(|e| ConfigError::at("cookie.domain", e)),
        }
    }
}

impl PasswordSection {
    pub(super) fn validate(self) -> Result<(HashCost, usize), ConfigError> {
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
