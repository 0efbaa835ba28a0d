//! The [`Verifier`]: discovery, the issuer's keys, the revocation feed and
//! the verified-token cache, behind one `verify` call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::cache::{DEFAULT_CAPACITY, TokenKey, VerifiedCache};
use crate::check::{Expectations, check};
use crate::claims::Claims;
use crate::error::VerifyError;
use crate::feed;
use crate::key::Jwks;
use crate::revoked::RevokedIds;

/// Builds a [`Verifier`]; start with [`Verifier::builder`].
#[derive(Debug, Clone)]
pub struct VerifierBuilder {
    issuer: String,
    audience: Option<String>,
    introspection_secret: Option<String>,
    max_staleness: Duration,
    leeway: Duration,
    max_token_lifetime: Duration,
    cache_capacity: usize,
    jwks_refetch_interval: Duration,
    startup_timeout: Duration,
    http: Option<reqwest::Client>,
}

impl VerifierBuilder {
    /// The audience this service expects in `aud` (default: the issuer URL,
    /// Tessera's default audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The issuer's `introspection_secret`: the revocation feed needs it.
    pub fn introspection_secret(mut self, secret: impl Into<String>) -> Self {
        self.introspection_secret = Some(secret.into());
        self
    }

    /// How long the revocation feed may be lost before every token is
    /// refused with [`VerifyError::Stale`] (default 5 s).
    pub fn max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = max;
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest lifetime (`exp - iat`) a token may claim (default 1 h; set it
    /// to the issuer's `token.access_ttl` to be strict).
    pub fn max_token_lifetime(mut self, max: Duration) -> Self {
        self.max_token_lifetime = max;
        self
    }

    /// Verified tokens remembered (default 100,000).
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Least time between two JWKS fetches caused by unknown key ids
    /// (default 1 s): forged `kid`s cannot make the verifier hammer the
    /// issuer, and a real rotation is seen within that time.
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = interval;
        self
    }

    /// How long [`VerifierBuilder::build`] waits for the revocation feed's
    /// first answer (default 10 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// The HTTP client to reach the issuer with (timeouts, TLS roots).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Reads the issuer's discovery document and key set, connects to the
    /// revocation feed, and waits until the feed has answered once.
    pub async fn build(self) -> Result<Verifier, VerifyError> {
        let issuer = self.issuer.trim_end_matches('/').to_owned();
        let http = match self.http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| VerifyError::Unavailable(e.to_string()))?,
        };
        let discovery: Discovery =
            get_json(&http, &format!("{issuer}/.well-known/openid-configuration")).await?;
        // RFC 8414 §3.3: the document must name the issuer it was asked for.
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(VerifyError::Unavailable(format!(
                "discovery names issuer {}, expected {issuer}",
                discovery.issuer
            )));
        }
        let revocations_uri = discovery
            .revocations_endpoint
            .unwrap_or_else(|| format!("{issuer}/v1/revocations"));
        let keys = fetch_jwks(&http, &discovery.jwks_uri).await?;
        let expect = Expectations {
            audience: self.audience.unwrap_or_else(|| issuer.clone()),
            issuer,
            leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
            max_lifetime: i64::try_from(self.max_token_lifetime.as_secs()).unwrap_or(i64::MAX),
        };
        let shared = Arc::new(Shared {
            expect,
            http,
            jwks_uri: discovery.jwks_uri,
            revocations_uri,
            secret: self.introspection_secret,
            keys: RwLock::new(Arc::new(keys)),
            refetch: tokio::sync::Mutex::new(None),
            refetch_interval: self.jwks_refetch_interval,
            revoked: RevokedIds::new(),
            cache: VerifiedCache::new(self.cache_capacity),
            epoch: Instant::now(),
            fresh_until_ms: AtomicU64::new(0),
            max_staleness: self.max_staleness,
        });
        let (first_answer, answered) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(feed::follow(Arc::downgrade(&shared), first_answer));
        let verifier = Verifier {
            shared,
            _feed: Arc::new(AbortOnDrop(task)),
        };
        match tokio::time::timeout(self.startup_timeout, answered).await {
            Ok(Ok(Ok(()))) => Ok(verifier),
            Ok(Ok(Err(why))) => Err(VerifyError::Unavailable(why)),
            Ok(Err(_)) | Err(_) => Err(VerifyError::Unavailable(
                "the revocation feed did not answer in time".into(),
            )),
        }
    }
}

/// Verifies Tessera access tokens locally and sees revocations within
/// about a second. Cheap to clone; the feed stops when the last clone goes.
///
/// ```no_run
/// # async fn run() -> Result<(), tessera_verify::VerifyError> {
/// let verifier = tessera_verify::Verifier::builder("https://auth.example.com")
///     .audience("https://api.example.com")
///     .introspection_secret(std::env::var("TESSERA_INTROSPECTION_SECRET").unwrap_or_default())
///     .build()
///     .await?;
/// let claims = verifier.verify("eyJ...").await?;
/// println!("user {} in session {}", claims.sub, claims.sid);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    shared: Arc<Shared>,
    _feed: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the verifier and its feed task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) expect: Expectations,
    pub(crate) http: reqwest::Client,
    jwks_uri: String,
    pub(crate) revocations_uri: String,
    pub(crate) secret: Option<String>,
    keys: RwLock<Arc<Jwks>>,
    /// When an unknown `kid` last caused a fetch; held while fetching so
    /// one caller fetches and the others wait for its result.
    refetch: tokio::sync::Mutex<Option<Instant>>,
    refetch_interval: Duration,
    pub(crate) revoked: RevokedIds,
    cache: VerifiedCache,
    epoch: Instant,
    /// Milliseconds after `epoch` until which the feed counts as current.
    fresh_until_ms: AtomicU64,
    pub(crate) max_staleness: Duration,
}

impl Shared {
    /// The feed delivered something (an entry or a heartbeat): current for
    /// another `max_staleness`.
    pub(crate) fn heard_from_feed(&self) {
        let until = self.epoch.elapsed() + self.max_staleness;
        let until = u64::try_from(until.as_millis()).unwrap_or(u64::MAX);
        self.fresh_until_ms.fetch_max(until, Ordering::Release);
    }

    fn is_fresh(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        now < self.fresh_until_ms.load(Ordering::Acquire)
    }
}

impl Verifier {
    /// Starts building a verifier for the issuer at `issuer` (the Tessera
    /// server's `public_url`).
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            audience: None,
            introspection_secret: None,
            max_staleness: Duration::from_secs(5),
            leeway: Duration::from_secs(30),
            max_token_lifetime: Duration::from_secs(3600),
            cache_capacity: DEFAULT_CAPACITY,
            jwks_refetch_interval: Duration::from_secs(1),
            startup_timeout: Duration::from_secs(10),
            http: None,
        }
    }

    /// Verifies an access token: the RFC 8725 checks of [`crate::check`]
    /// (skipped for a token verified before, from the cache), then the
    /// revocation set. Refuses everything with [`VerifyError::Stale`] while
    /// the revocation feed has been lost for longer than `max_staleness`.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let shared = &self.shared;
        if !shared.is_fresh() {
            return Err(VerifyError::Stale);
        }
        let now = unix_now();
        let key = TokenKey::of(token);
        let claims = match shared
            .cache
            .get(&key, now.saturating_sub(shared.expect.leeway))
        {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.check(token, now).await?);
                shared.cache.put(key, claims.clone());
                claims
            }
        };
        if shared.revoked.is_revoked(&claims.sid, &claims.jti) {
            return Err(VerifyError::Revoked);
        }
        Ok(Claims::clone(&claims))
    }

    async fn check(&self, token: &str, now: i64) -> Result<Claims, VerifyError> {
        let keys = self.keys();
        match check(token, &*keys, &self.shared.expect, now) {
            Err(VerifyError::UnknownKey) => {
                // A key rotated in since the last fetch, or a forged kid:
                // fetch again, at most once per interval.
                if self.refetch_keys(&keys).await {
                    check(token, &*self.keys(), &self.shared.expect, now)
                } else {
                    Err(VerifyError::UnknownKey)
                }
            }
            other => other,
        }
    }

    fn keys(&self) -> Arc<Jwks> {
        self.shared
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Fetches the key set unless it was fetched within the interval;
    /// whether the set now differs from `seen`.
    async fn refetch_keys(&self, seen: &Arc<Jwks>) -> bool {
        let mut last = self.shared.refetch.lock().await;
        if !Arc::ptr_eq(seen, &self.keys()) {
            return true; // another caller fetched while this one waited
        }
        if last.is_some_and(|at| at.elapsed() < self.shared.refetch_interval) {
            return false;
        }
        *last = Some(Instant::now());
        match fetch_jwks(&self.shared.http, &self.shared.jwks_uri).await {
            Ok(fresh) => {
                *self.shared.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
                self.shared.cache.clear();
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refetch the issuer's keys");
                false
            }
        }
    }

    /// Whether the revocation feed is current (tokens can be verified).
    pub fn is_fresh(&self) -> bool {
        self.shared.is_fresh()
    }

    /// Revoked ids currently held.
    pub fn revoked_len(&self) -> usize {
        self.shared.revoked.len()
    }

    /// The issuer and audience tokens are checked against.
    pub fn expectations(&self) -> &Expectations {
        &self.shared.expect
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    revocations_endpoint: Option<String>,
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, VerifyError> {
    let body = get_bytes(http, url).await?;
    serde_json::from_slice(&body).map_err(|e| VerifyError::Unavailable(format!("{url}: {e}")))
}

/// Most bytes read from a discovery or JWKS answer.
const MAX_DOCUMENT: usize = 256 * 1024;

async fn get_bytes(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, VerifyError> {
    let unavailable = |e: reqwest::Error| VerifyError::Unavailable(format!("{url}: {e}"));
    let mut response = http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(unavailable)?;
    if !response.status().is_success() {
        return Err(VerifyError::Unavailable(format!(
            "{url}: status {}",
            response.status()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(VerifyError::Unavailable(format!("{url}: answer too large")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn fetch_jwks(http: &reqwest::Client, url: &str) -> Result<Jwks, VerifyError> {
    Jwks::parse(&get_bytes(http, url).await?)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
