//! A real server on an ephemeral port, and typed clients for it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tessera_core::clock::{Clock, ManualClock, SystemClock};
use tessera_core::key_wrap::KeyEncryptionKey;
use tessera_core::password::HashCost;
use tessera_core::{Tessera, TesseraConfig};
use tessera_http::cookie::CookieConfig;
use tessera_http::csrf::OriginPolicy;
use tessera_http::{AppState, HttpConfig, app};
use tessera_store_sqlite::SqliteStore;

pub mod authenticator;
pub mod oauth;

pub const PASSWORD: &str = "correct horse battery staple";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123456789";
pub const INTROSPECTION_SECRET: &str = "test-introspection-secret-0123456789abcdef";
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789abcdef0123456";

/// Knobs for a test server.
#[derive(Default)]
pub struct Options {
    pub clock: Option<ManualClock>,
    pub core: TesseraConfig,
    pub secure_cookie: bool,
    pub allowed_origins: Vec<String>,
    /// Peers whose X-Forwarded-For is believed (to simulate many clients).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Overrides the 30 s request timeout.
    pub request_timeout: Option<std::time::Duration>,
    /// The web pages' product name and accent, if not the defaults.
    pub ui: Option<tessera_http::pages::ui::UiConfig>,
    /// `forward_auth.allowed_hosts` (forward authentication then redirects
    /// to this server's sign-in page).
    pub forward_auth_hosts: Vec<String>,
    /// Send `Strict-Transport-Security` (as when serving HTTPS).
    pub hsts: bool,
    /// Name the server `http://localhost:<port>` rather than by its
    /// address: WebAuthn needs a domain name for its relying party.
    pub localhost: bool,
}

pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub state: AppState,
    pub store: Arc<SqliteStore>,
    pub clock: Option<ManualClock>,
    /// The key-encryption key the signing keys are sealed under.
    pub kek: KeyEncryptionKey,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    /// A server on a manual clock that starts now, and the clock.
    pub async fn on_manual_clock() -> (Self, ManualClock) {
        let clock = ManualClock::new(time::OffsetDateTime::now_utc());
        let server = Self::with(Options {
            clock: Some(clock.clone()),
            ..Options::default()
        })
        .await;
        (server, clock)
    }

    pub async fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
        store.migrate().await.unwrap();
        let clock: Arc<dyn Clock> = match &options.clock {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(SystemClock),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = if options.localhost {
            format!("http://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        };
        let mut config = options.core;
        config.tokens.issuer = base.clone();
        config.tokens.audience = base.clone();
        let kek = KeyEncryptionKey::generate().unwrap();
        let core = Arc::new(
            Tessera::open(store.clone(), clock, config, kek.clone())
                .await
                .unwrap(),
        );
        let http = HttpConfig {
            cookie: CookieConfig {
                secure: options.secure_cookie,
                ..CookieConfig::default()
            },
            origins: OriginPolicy::new(Some(&base), &options.allowed_origins).unwrap(),
            admin_token: Some(ADMIN_TOKEN.into()),
            introspection_secret: Some(INTROSPECTION_SECRET.into()),
            metrics_token: Some(METRICS_TOKEN.into()),
            trusted_proxies: options.trusted_proxies.clone(),
            hsts: options.hsts,
            request_timeout: options.request_timeout,
            draining: Default::default(),
        };
        let mut state = AppState::new(core, http);
        if let Some(ui) = options.ui.clone() {
            state = state.with_ui(ui);
        }
        if !options.forward_auth_hosts.is_empty() {
            let hosts = tessera_http::allowed_hosts::AllowedHosts::new(&options.forward_auth_hosts)
                .unwrap();
            state = state.with_forward_auth(tessera_http::ForwardAuthConfig::new(&base, hosts));
        }
        let service = app(state.clone())
            .unwrap()
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
        Self {
            base,
            addr,
            state,
            store,
            clock: options.clock,
            kek,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A client with no cookie jar.
    pub fn anon(&self) -> reqwest::Client {
        reqwest::Client::builder().build().unwrap()
    }

    /// A request with the admin token and nothing else.
    pub async fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.anon()
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// An anonymous POST of `body` as given, with `content_type` if any.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.anon().post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send().await.unwrap()
    }

    pub async fn register(&self, username: &str) -> Value {
        let r = self
            .anon()
            .post(self.url("/v1/users"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "registering {username}");
        r.json().await.unwrap()
    }

    /// Registers `username` and signs in by cookie.
    pub async fn signed_in(&self, username: &str) -> CookieClient {
        self.register(username).await;
        self.sign_in(username).await
    }

    pub async fn sign_in(&self, username: &str) -> CookieClient {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent("tessera-tests")
            .build()
            .unwrap();
        let r = client
            .post(self.url("/v1/session"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "signing in {username}");
        let cookie = set_cookie(r.headers()).unwrap();
        let body: Value = r.json().await.unwrap();
        CookieClient {
            base: self.base.clone(),
            client,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
            session_id: body["session"]["id"].as_str().unwrap().to_owned(),
            cookie: cookie_value(&cookie).to_owned(),
        }
    }
}

/// A browser-like client: cookie jar plus the session's CSRF token.
pub struct CookieClient {
    pub base: String,
    pub client: reqwest::Client,
    pub csrf: String,
    pub session_id: String,
    /// The raw cookie value as set at sign-in.
    pub cookie: String,
}

impl CookieClient {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// An unsafe request with the CSRF header.
    pub fn unsafe_req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-csrf-token", &self.csrf)
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.unsafe_req(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap()
    }
}

pub fn set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get("set-cookie")
        .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
}

pub fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
}

/// Asserts a problem+json answer with `status`, returning the body.
pub async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "not problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:tessera:problem:")
    );
    assert!(body["title"].is_string());
    assert!(body["detail"].is_string());
    body
}

/// Cheap hashing for tests that sign in (and register) many times and do
/// not test hashing; they do not test brute-force limits either, so those
/// are out of the way.
pub fn cheap_hashing() -> TesseraConfig {
    TesseraConfig {
        hash_cost: HashCost {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        rate_limit: tessera_core::rate_limit::RateLimitPolicy {
            login_attempts: 10_000,
            window: time::Duration::minutes(1),
            registrations: 10_000,
        },
        ..TesseraConfig::default()
    }
}

/// The default settings, except that one address may register many users:
/// for tests of other features that register from loopback in bulk.
pub fn many_registrations() -> TesseraConfig {
    let mut config = TesseraConfig::default();
    config.rate_limit.registrations = 10_000;
    config
}

/// Tokens from the password grant.
pub struct TokenClient {
    pub base: String,
    pub access: String,
    pub refresh: String,
    pub session_id: String,
}

impl TokenClient {
    pub async fn me(&self) -> reqwest::Response {
        self.get_with(&self.access, "/v1/me").await
    }

    pub async fn get_with(&self, token: &str, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

impl TestServer {
    /// `POST /v1/token` with form fields.
    pub async fn token_request(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.anon()
            .post(self.url("/v1/token"))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Password grant for an existing user.
    pub async fn tokens(&self, username: &str) -> TokenClient {
        let r = self
            .token_request(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", PASSWORD),
            ])
            .await;
        assert_eq!(r.status(), 200, "password grant for {username}");
        let body: Value = r.json().await.unwrap();
        TokenClient {
            base: self.base.clone(),
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
            session_id: body["session_id"].as_str().unwrap().to_owned(),
        }
    }

    /// Refresh grant; the raw response.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// RFC 7662 introspection with the introspection secret.
    pub async fn introspect(&self, token: &str) -> Value {
        let r = self
            .anon()
            .post(self.url("/v1/token/introspect"))
            .bearer_auth(INTROSPECTION_SECRET)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

/// Asserts an RFC 6749 §5.2 error answer, returning the body.
pub async fn oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "OAuth errors are plain JSON"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    body
}

/// The decoded JSON of a JWT part (0 = header, 1 = claims).
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Builds a JWS from raw header and claims JSON, signed with `key` if given
/// (an empty signature otherwise).
pub fn craft_token(
    header: &Value,
    claims: &Value,
    key: Option<(&jsonwebtoken::EncodingKey, jsonwebtoken::Algorithm)>,
) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = match key {
        Some((key, alg)) => jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap(),
        None => String::new(),
    };
    format!("{message}.{signature}")
}

impl TestServer {
    /// `/metrics` as text, read with the metrics token.
    pub async fn exposition(&self) -> String {
        self.anon()
            .get(self.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The value of one sample line of an exposition (`name{labels}` as
/// written), 0 if absent.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}
