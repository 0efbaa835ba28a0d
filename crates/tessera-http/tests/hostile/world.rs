//! The server under test, the request model, and the rules every answer
//! obeys ([`verify`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tessera_core::clock::ManualClock;
use time::OffsetDateTime;

use crate::common::*;

/// Longest any single exchange may take before it counts as a hang.
pub const LIMIT: Duration = Duration::from_secs(10);
pub const KIB: usize = 1024;
/// The request body limit the server documents.
pub const BODY_LIMIT: usize = 64 * KIB;

/// Every route of the API, `{id}` standing for a path parameter.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v1/users"),
    ("GET", "/v1/me"),
    ("POST", "/v1/me/password"),
    ("POST", "/v1/session"),
    ("GET", "/v1/session"),
    ("DELETE", "/v1/session"),
    ("GET", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions/{id}"),
    ("GET", "/v1/me/consents"),
    ("DELETE", "/v1/me/consents/{id}"),
    ("POST", "/v1/token"),
    ("POST", "/v1/token/revoke"),
    ("POST", "/v1/token/introspect"),
    ("GET", "/v1/revocations"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/v1/admin/keys"),
    ("POST", "/v1/admin/keys/rotate"),
    ("GET", "/v1/admin/audit"),
    ("GET", "/v1/admin/users"),
    ("POST", "/v1/admin/users/{id}/disable"),
    ("POST", "/v1/admin/users/{id}/enable"),
    ("DELETE", "/v1/admin/users/{id}/sessions"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
];

/// Routes that need a caller (session, token, admin or verifier secret).
pub const NEEDS_CREDENTIALS: &[(&str, &str)] = &[
    ("GET", "/v1/me"),
    ("POST", "/v1/me/password"),
    ("GET", "/v1/session"),
    ("GET", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions/{id}"),
    ("GET", "/v1/me/consents"),
    ("DELETE", "/v1/me/consents/{id}"),
    ("POST", "/v1/token/introspect"),
    ("GET", "/v1/revocations"),
    ("GET", "/v1/admin/keys"),
    ("POST", "/v1/admin/keys/rotate"),
    ("GET", "/v1/admin/audit"),
    ("GET", "/v1/admin/users"),
    ("POST", "/v1/admin/users/{id}/disable"),
    ("POST", "/v1/admin/users/{id}/enable"),
    ("DELETE", "/v1/admin/users/{id}/sessions"),
];

/// Credentials a request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cred {
    Anon,
    /// Session cookie plus its CSRF token in `X-CSRF-Token`.
    Cookie,
    /// A user's access token.
    Bearer,
    /// The configured admin token.
    Admin,
    /// The introspection secret.
    Verifier,
}

pub const CREDS: [Cred; 5] = [
    Cred::Anon,
    Cred::Cookie,
    Cred::Bearer,
    Cred::Admin,
    Cred::Verifier,
];

/// How a route answers errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Problem,
    OAuth,
    /// `GET /v1/revocations` answers credential errors as RFC 6749 JSON
    /// (as `tests/tokens.rs` pins) and bad queries as problem+json.
    Either,
}

pub fn style(method: &Method, path: &str) -> Style {
    let path = path.split(['?', '#']).next().unwrap_or("");
    match (method.as_str(), path) {
        ("POST", "/v1/token" | "/v1/token/revoke" | "/v1/token/introspect") => Style::OAuth,
        ("GET" | "HEAD", "/v1/revocations") => Style::Either,
        _ => Style::Problem,
    }
}

/// Routes whose success can end the credentials the tests hold (sign-in
/// ends the session of a cookie sent along).
pub fn destructive(method: &Method, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or("");
    match method.as_str() {
        "DELETE" => path == "/v1/session" || path.starts_with("/v1/me/sessions"),
        "POST" => path == "/v1/session" || path == "/v1/me/password",
        _ => false,
    }
}

/// One request, described well enough to reproduce it from a failure message.
#[derive(Debug, Clone)]
pub struct Req {
    pub category: &'static str,
    pub method: Method,
    /// Path and query, appended to the server's base URL.
    pub target: String,
    pub cred: Cred,
    pub content_type: Option<Vec<u8>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Vec<u8>>,
}

impl Req {
    pub fn new(
        category: &'static str,
        method: &str,
        target: impl Into<String>,
        cred: Cred,
    ) -> Self {
        Self {
            category,
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            target: target.into(),
            cred,
            content_type: None,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn content_type(mut self, ct: &[u8]) -> Self {
        self.content_type = Some(ct.to_vec());
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn json(self, value: &Value) -> Self {
        self.content_type(b"application/json")
            .body(value.to_string())
    }

    pub fn header(mut self, name: &str, value: HeaderValue) -> Self {
        self.headers
            .push((HeaderName::from_bytes(name.as_bytes()).unwrap(), value));
        self
    }

    pub fn describe(&self) -> String {
        let mut s = format!(
            "[{}] {} {} as {:?}",
            self.category,
            self.method,
            clip(self.target.as_bytes(), 300),
            self.cred
        );
        if let Some(ct) = &self.content_type {
            s.push_str(&format!("; content-type {}", clip(ct, 100)));
        }
        for (name, value) in &self.headers {
            s.push_str(&format!(
                "; {name}: {} ({} bytes)",
                clip(value.as_bytes(), 80),
                value.len()
            ));
        }
        if let Some(body) = &self.body {
            s.push_str(&format!(
                "; body ({} bytes) {}",
                body.len(),
                clip(body, 300)
            ));
        }
        s
    }
}

/// Printable, bounded rendering of arbitrary bytes.
pub fn clip(bytes: &[u8], max: usize) -> String {
    let shown: String = bytes
        .iter()
        .take(max)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if bytes.len() > max {
        format!("{shown}…")
    } else {
        shown
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn pct(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(b) {
                char::from(*b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The path as the client actually sent it (after URL normalisation).
    pub sent_path: String,
    /// Whether the router answered (its security headers are on everything
    /// it sends), rather than the HTTP layer refusing the request unrouted.
    pub ours: bool,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Asserts the rules every answer obeys: no 5xx, and refusals in the
/// route's documented format with a well-formed body.
pub fn verify(
    method: &Method,
    path: &str,
    status: u16,
    content_type: &str,
    body: &[u8],
    what: &str,
) {
    assert!(
        status < 500,
        "server error {status} {} for {what}",
        clip(body, 500)
    );
    if !(400..500).contains(&status) {
        return;
    }
    let is_problem = content_type == "application/problem+json";
    let is_oauth = content_type.starts_with("application/json");
    let allowed = match style(method, path) {
        Style::Problem => is_problem,
        Style::OAuth => is_oauth,
        Style::Either => is_problem || is_oauth,
    };
    assert!(
        allowed,
        "{status} with content-type `{content_type}` (expected {:?}) for {what}",
        style(method, path)
    );
    if *method == Method::HEAD {
        return;
    }
    let parsed: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{status} body is not JSON ({e}): {} for {what}",
            clip(body, 300)
        )
    });
    if is_problem {
        assert_eq!(parsed["status"], status, "problem status for {what}");
        assert!(
            parsed["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:tessera:problem:")),
            "problem type {parsed} for {what}"
        );
        assert!(parsed["title"].is_string(), "problem title for {what}");
        assert!(parsed["detail"].is_string(), "problem detail for {what}");
    } else {
        assert!(
            parsed["error"].is_string(),
            "OAuth error {parsed} for {what}"
        );
        assert!(
            parsed["error_description"].is_string(),
            "OAuth error_description {parsed} for {what}"
        );
    }
}

/// A server on a manual clock with a signed-in user, an admin token and
/// the introspection secret, and a tally of requests per category.
pub struct World {
    pub server: TestServer,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    pub cookie_name: String,
    pub user: String,
    pub user_id: String,
    pub cookie: String,
    pub csrf: String,
    pub access: String,
    pub victim_id: String,
    pub victim_session: String,
    pub tally: Mutex<BTreeMap<&'static str, usize>>,
    /// Answers by credential and status, to show what the requests reached.
    pub statuses: Mutex<BTreeMap<String, usize>>,
    pub started: Instant,
}

impl World {
    pub async fn new() -> Self {
        let started = Instant::now();
        let clock = ManualClock::new(OffsetDateTime::now_utc());
        let server = TestServer::with(Options {
            clock: Some(clock.clone()),
            core: cheap_hashing(),
            ..Options::default()
        })
        .await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection per request: a server closing one after a
            // refusal never races the next request.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let cookie_name = server.state.http().cookie.effective_name().to_owned();
        let user = "mallory".to_owned();
        let setup = async {
            let user_id = server.register(&user).await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let victim_id = server.register("victim").await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let victim_session = server.tokens("victim").await.session_id;
            (user_id, victim_id, victim_session)
        };
        let (user_id, victim_id, victim_session) = tokio::time::timeout(LIMIT, setup)
            .await
            .expect("registering the test users hangs");
        let mut world = Self {
            server,
            clock,
            http,
            cookie_name,
            user,
            user_id,
            cookie: String::new(),
            csrf: String::new(),
            access: String::new(),
            victim_id,
            victim_session,
            tally: Mutex::new(BTreeMap::new()),
            statuses: Mutex::new(BTreeMap::new()),
            started,
        };
        world.refresh().await;
        world
    }

    /// Moves the clock past every sign-in block (IP blocks double up to a
    /// day and their strikes are remembered for a day).
    pub fn cool_down(&self) {
        self.clock.advance(time::Duration::days(2));
    }

    /// Fresh cookie session and access token for the test user.
    pub async fn refresh(&mut self) {
        self.cool_down();
        let fresh = async {
            let cookie = self.server.sign_in(&self.user).await;
            let tokens = self.server.tokens(&self.user).await;
            (cookie, tokens)
        };
        let (cookie, tokens) = tokio::time::timeout(LIMIT, fresh)
            .await
            .expect("signing the test user in again hangs");
        self.cookie = cookie.cookie;
        self.csrf = cookie.csrf;
        self.access = tokens.access;
    }

    pub fn count(&self, category: &'static str) {
        *self.tally.lock().unwrap().entry(category).or_default() += 1;
    }

    pub fn builder(&self, req: &Req) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(req.method.clone(), self.server.url(&req.target));
        rb = match req.cred {
            Cred::Anon => rb,
            Cred::Cookie => rb
                .header(COOKIE, format!("{}={}", self.cookie_name, self.cookie))
                .header("x-csrf-token", &self.csrf),
            Cred::Bearer => rb.bearer_auth(&self.access),
            Cred::Admin => rb.bearer_auth(ADMIN_TOKEN),
            Cred::Verifier => rb.bearer_auth(INTROSPECTION_SECRET),
        };
        if let Some(ct) = &req.content_type {
            rb = rb.header(CONTENT_TYPE, HeaderValue::from_bytes(ct).unwrap());
        }
        for (name, value) in &req.headers {
            rb = rb.header(name.clone(), value.clone());
        }
        if let Some(body) = &req.body {
            rb = rb.body(body.clone());
        }
        rb
    }

    /// Sends `req` within [`LIMIT`]; a transport error is returned, a hang
    /// fails the test. Event streams are not read (they never end).
    pub async fn exchange(&self, req: &Req) -> Result<Answer, reqwest::Error> {
        self.count(req.category);
        let rb = self.builder(req);
        let exchange = async {
            let r = rb.send().await?;
            let status = r.status().as_u16();
            let sent_path = r.url().path().to_owned();
            let content_type = r
                .headers()
                .get(CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let ours = r.headers().contains_key("x-content-type-options");
            let streaming = content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("text/event-stream"));
            let body = if streaming {
                Vec::new()
            } else {
                r.bytes().await?.to_vec()
            };
            Ok(Answer {
                status,
                content_type,
                body,
                sent_path,
                ours,
            })
        };
        match tokio::time::timeout(LIMIT, exchange).await {
            Ok(result) => result,
            Err(_) => panic!("no answer within {LIMIT:?} (hang) for {}", req.describe()),
        }
    }

    /// Sends and checks; the connection must not fail and the router must
    /// answer.
    pub async fn hit(&self, req: &Req) -> Answer {
        let answer = self
            .exchange(req)
            .await
            .unwrap_or_else(|e| panic!("transport error {e:?} for {}", req.describe()));
        assert!(
            answer.ours,
            "answered {} by the HTTP layer, not the router, for {}",
            answer.status,
            req.describe()
        );
        self.check(req, &answer);
        answer
    }

    /// Sends and checks; a refusal by the HTTP layer (431, 414, …) or a
    /// connection the server closed is fine, so long as it is no 5xx.
    pub async fn hit_or_closed(&self, req: &Req) -> Option<Answer> {
        match self.exchange(req).await {
            Ok(answer) if !answer.ours => {
                self.count("refused by the HTTP layer (allowed here)");
                assert!(
                    answer.status < 500,
                    "server error {} for {}",
                    answer.status,
                    req.describe()
                );
                None
            }
            Ok(answer) => {
                self.check(req, &answer);
                Some(answer)
            }
            Err(e) if e.is_builder() => panic!("cannot build {}: {e}", req.describe()),
            Err(_) => {
                self.count("closed connections (allowed here)");
                None
            }
        }
    }

    pub fn check(&self, req: &Req, answer: &Answer) {
        *self
            .statuses
            .lock()
            .unwrap()
            .entry(format!("{:?} {}", req.cred, answer.status))
            .or_default() += 1;
        verify(
            &req.method,
            &answer.sent_path,
            answer.status,
            answer.content_type.as_deref().unwrap_or(""),
            &answer.body,
            &req.describe(),
        );
    }

    /// Sends, checks, and gets new credentials if the request may have
    /// ended them.
    pub async fn probe(&mut self, req: &Req) -> Answer {
        let answer = self.hit(req).await;
        let carries_credentials = req.cred != Cred::Anon
            || req
                .headers
                .iter()
                .any(|(name, _)| *name == COOKIE || *name == AUTHORIZATION);
        if carries_credentials
            && (200..300).contains(&answer.status)
            && destructive(&req.method, &answer.sent_path)
        {
            self.refresh().await;
        }
        answer
    }

    /// `/healthz`, `/readyz` and a normal sign-in (cookie and token) still
    /// work, and a new account can still be made; then prints the tally.
    pub async fn assert_still_serving(&mut self, test: &str) {
        self.cool_down();
        for path in ["/healthz", "/readyz"] {
            let r = self
                .hit(&Req::new("final check", "GET", path, Cred::Anon))
                .await;
            assert_eq!(r.status, 200, "{path} after the hostile requests");
        }
        self.refresh().await;
        for cred in [Cred::Cookie, Cred::Bearer] {
            let r = self
                .hit(&Req::new("final check", "GET", "/v1/me", cred))
                .await;
            assert_eq!(
                r.status, 200,
                "GET /v1/me by {cred:?} after the hostile requests"
            );
            assert_eq!(r.json()["username"], self.user.as_str());
            assert_eq!(r.json()["id"], self.user_id.as_str());
        }
        let r = self
            .hit(
                &Req::new("final check", "POST", "/v1/users", Cred::Anon)
                    .json(&json!({ "username": "late-comer", "password": PASSWORD })),
            )
            .await;
        assert_eq!(r.status, 201, "registration after the hostile requests");
        let r = self
            .hit(
                &Req::new("final check", "POST", "/v1/session", Cred::Anon)
                    .json(&json!({ "username": "late-comer", "password": PASSWORD })),
            )
            .await;
        assert_eq!(r.status, 200, "sign-in after the hostile requests");
        let tally = self.tally.lock().unwrap();
        let total: usize = tally.values().sum();
        eprintln!(
            "[hostile] {test}: {total} requests in {:.1?}: {tally:?}",
            self.started.elapsed()
        );
        eprintln!(
            "[hostile] {test}: answers by credential: {:?}",
            self.statuses.lock().unwrap()
        );
    }

    /// `template` with `{id}` filled by a value that fits the route.
    pub fn real_id(&self, template: &str) -> String {
        if template.starts_with("/v1/me/sessions/") {
            self.victim_session.clone()
        } else {
            self.victim_id.clone()
        }
    }
}

/// `{id}` filled with the route's real id (another user's).
pub fn fill(world: &World, template: &str) -> String {
    template.replace("{id}", &world.real_id(template))
}
