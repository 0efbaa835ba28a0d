#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Hostile input over real HTTP: malformed, mistyped, injected, oversized
//! and random requests to every endpoint, anonymous and with every kind of
//! credential. No answer may be a 5xx, none may take longer than
//! [`LIMIT`], and every refusal must be in the documented format:
//! `application/problem+json`, or RFC 6749 JSON on `/v1/token*`.
//!
//! Every test ends by checking that the server still serves and that a
//! normal sign-in still works. The suite makes thousands of failed sign-ins
//! from one address; rather than rely on `cheap_hashing` raising the
//! brute-force limits, the servers run on a manual clock that is moved past
//! any block before the test user signs in again.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tessera_core::clock::ManualClock;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest any single exchange may take before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(10);
const KIB: usize = 1024;
/// The request body limit the server documents.
const BODY_LIMIT: usize = 64 * KIB;

/// Every route of the API, `{id}` standing for a path parameter.
const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v1/users"),
    ("GET", "/v1/me"),
    ("POST", "/v1/me/password"),
    ("POST", "/v1/session"),
    ("GET", "/v1/session"),
    ("DELETE", "/v1/session"),
    ("GET", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions/{id}"),
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
const NEEDS_CREDENTIALS: &[(&str, &str)] = &[
    ("GET", "/v1/me"),
    ("POST", "/v1/me/password"),
    ("GET", "/v1/session"),
    ("GET", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions/{id}"),
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

/// Strings that have broken servers before, used as every text field.
const NASTY: &[&str] = &[
    "",
    " ",
    "' OR '1'='1",
    "alice'; DROP TABLE users; --",
    "%' UNION SELECT username, password_hash FROM users --",
    "\" OR \"\"=\"",
    "1); DELETE FROM sessions; --",
    "..%2F..%2Fetc%2Fpasswd",
    "../../../../etc/passwd",
    "al\u{202E}ice",
    "al\u{200D}ice",
    "al\u{200B}ice",
    "\u{FEFF}alice",
    "\u{0430}lice",
    "ａｌｉｃｅ",
    "ali\u{0000}ce",
    "\u{0000}",
    "😀🔥\u{1F3F4}\u{E0067}\u{E007F}",
    "\u{10FFFF}\u{FFFD}\u{FFFF}",
    "<script>alert(1)</script>",
    "${jndi:ldap://127.0.0.1/a}",
    "%00%ff%fe%",
    "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "ts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJhIn0.",
    "a.b.c",
    "....",
    "\\\\?\\C:\\Windows\\win.ini",
];

/// Characters that make text look like something it is not.
const TRICKY_CHARS: &[char] = &[
    '\u{0}',
    '\u{1}',
    '\u{7F}',
    '\u{202E}',
    '\u{202D}',
    '\u{2066}',
    '\u{200B}',
    '\u{200D}',
    '\u{FEFF}',
    '\u{00AD}',
    'а',
    'е',
    'о',
    'ａ',
    'Ａ',
    '\u{FB03}',
    '\u{0301}',
    '\u{FFFD}',
    '\u{10FFFF}',
    '\u{E000}',
    '😀',
    '\'',
    '"',
    '%',
    '\\',
    ';',
    '&',
    '=',
    '+',
    '<',
    '/',
];

/// Credentials a request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cred {
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

const CREDS: [Cred; 5] = [
    Cred::Anon,
    Cred::Cookie,
    Cred::Bearer,
    Cred::Admin,
    Cred::Verifier,
];

/// How a route answers errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Problem,
    OAuth,
    /// `GET /v1/revocations` answers credential errors as RFC 6749 JSON
    /// (as `tests/tokens.rs` pins) and bad queries as problem+json.
    Either,
}

fn style(method: &Method, path: &str) -> Style {
    let path = path.split(['?', '#']).next().unwrap_or("");
    match (method.as_str(), path) {
        ("POST", "/v1/token" | "/v1/token/revoke" | "/v1/token/introspect") => Style::OAuth,
        ("GET" | "HEAD", "/v1/revocations") => Style::Either,
        _ => Style::Problem,
    }
}

/// Routes whose success can end the credentials the tests hold (sign-in
/// ends the session of a cookie sent along).
fn destructive(method: &Method, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or("");
    match method.as_str() {
        "DELETE" => path == "/v1/session" || path.starts_with("/v1/me/sessions"),
        "POST" => path == "/v1/session" || path == "/v1/me/password",
        _ => false,
    }
}

/// One request, described well enough to reproduce it from a failure message.
#[derive(Debug, Clone)]
struct Req {
    category: &'static str,
    method: Method,
    /// Path and query, appended to the server's base URL.
    target: String,
    cred: Cred,
    content_type: Option<Vec<u8>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Vec<u8>>,
}

impl Req {
    fn new(category: &'static str, method: &str, target: impl Into<String>, cred: Cred) -> Self {
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

    fn content_type(mut self, ct: &[u8]) -> Self {
        self.content_type = Some(ct.to_vec());
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    fn json(self, value: &Value) -> Self {
        self.content_type(b"application/json")
            .body(value.to_string())
    }

    fn header(mut self, name: &str, value: HeaderValue) -> Self {
        self.headers
            .push((HeaderName::from_bytes(name.as_bytes()).unwrap(), value));
        self
    }

    fn describe(&self) -> String {
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
fn clip(bytes: &[u8], max: usize) -> String {
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

/// What came back.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
    /// The path as the client actually sent it (after URL normalisation).
    sent_path: String,
    /// Whether the router answered (its security headers are on everything
    /// it sends), rather than the HTTP layer refusing the request unrouted.
    ours: bool,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Asserts the rules every answer obeys: no 5xx, and refusals in the
/// route's documented format with a well-formed body.
fn verify(method: &Method, path: &str, status: u16, content_type: &str, body: &[u8], what: &str) {
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
struct World {
    server: TestServer,
    clock: ManualClock,
    http: reqwest::Client,
    cookie_name: String,
    user: String,
    user_id: String,
    cookie: String,
    csrf: String,
    access: String,
    victim_id: String,
    victim_session: String,
    tally: Mutex<BTreeMap<&'static str, usize>>,
    /// Answers by credential and status, to show what the requests reached.
    statuses: Mutex<BTreeMap<String, usize>>,
    started: Instant,
}

impl World {
    async fn new() -> Self {
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
    fn cool_down(&self) {
        self.clock.advance(time::Duration::days(2));
    }

    /// Fresh cookie session and access token for the test user.
    async fn refresh(&mut self) {
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

    fn count(&self, category: &'static str) {
        *self.tally.lock().unwrap().entry(category).or_default() += 1;
    }

    fn builder(&self, req: &Req) -> reqwest::RequestBuilder {
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
    async fn exchange(&self, req: &Req) -> Result<Answer, reqwest::Error> {
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
    async fn hit(&self, req: &Req) -> Answer {
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
    async fn hit_or_closed(&self, req: &Req) -> Option<Answer> {
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

    fn check(&self, req: &Req, answer: &Answer) {
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
    async fn probe(&mut self, req: &Req) -> Answer {
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
    async fn assert_still_serving(&mut self, test: &str) {
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
    fn real_id(&self, template: &str) -> String {
        if template.starts_with("/v1/me/sessions/") {
            self.victim_session.clone()
        } else {
            self.victim_id.clone()
        }
    }
}

/// `{id}` filled with the route's real id (another user's).
fn fill(world: &World, template: &str) -> String {
    template.replace("{id}", &world.real_id(template))
}

// ---------------------------------------------------------------------------
// Crafted bodies
// ---------------------------------------------------------------------------

/// A body for every route at once: each text field holds `v`.
fn every_field(v: &Value, grant_type: &str) -> Value {
    json!({
        "username": v,
        "password": v,
        "current_password": v,
        "new_password": v,
        "grant_type": grant_type,
        "token": v,
        "refresh_token": v,
        "token_type_hint": v,
    })
}

/// A crafted body: label, content type (none when `None`), bytes.
struct Body {
    label: String,
    content_type: Option<&'static [u8]>,
    bytes: Vec<u8>,
}

fn body(
    label: impl Into<String>,
    content_type: Option<&'static [u8]>,
    bytes: impl Into<Vec<u8>>,
) -> Body {
    Body {
        label: label.into(),
        content_type,
        bytes: bytes.into(),
    }
}

const JSON: Option<&[u8]> = Some(b"application/json");
const FORM: Option<&[u8]> = Some(b"application/x-www-form-urlencoded");

/// A JSON object of exactly `total` bytes whose username fills the space.
fn sized_json(total: usize) -> Vec<u8> {
    let skeleton = json!({
        "username": "",
        "password": "not the password",
        "current_password": "not the password",
        "new_password": "a new password 123",
        "grant_type": "password",
        "token": "x",
    })
    .to_string();
    let pad = "a".repeat(total - skeleton.len());
    let out = skeleton.replacen("\"username\":\"\"", &format!("\"username\":\"{pad}\""), 1);
    assert_eq!(out.len(), total);
    out.into_bytes()
}

/// A form of exactly `total` bytes whose username fills the space.
fn sized_form(total: usize) -> Vec<u8> {
    let tail =
        "&password=not+the+password&current_password=x&new_password=y&grant_type=password&token=x";
    let head = "username=";
    let pad = "a".repeat(total - head.len() - tail.len());
    let out = format!("{head}{pad}{tail}");
    assert_eq!(out.len(), total);
    out.into_bytes()
}

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}{}", open.repeat(depth), close.repeat(depth))
}

/// Malformed, mistyped and odd JSON documents.
fn json_shape_bodies(user: &str) -> Vec<Body> {
    vec![
        body("empty", JSON, ""),
        body("{}", JSON, "{}"),
        body("[]", JSON, "[]"),
        body("null", JSON, "null"),
        body("bare string", JSON, "\"alice\""),
        body("bare number", JSON, "42"),
        body("whitespace only", JSON, " \n\t\r "),
        body("10k nested arrays", JSON, nested("[", "]", 10_000)),
        body(
            "10k nested objects",
            JSON,
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
        ),
        body(
            "10k nested arrays in a field",
            JSON,
            format!("{{\"username\":{},\"password\":\"x\"}}", nested("[", "]", 10_000)),
        ),
        body("60 KiB", JSON, sized_json(60 * KIB)),
        body("70 KiB", JSON, sized_json(70 * KIB)),
        body(
            "invalid UTF-8",
            JSON,
            b"{\"username\":\"\xff\xfe\xfd\",\"password\":\"\xc3\x28\xa0\",\"token\":\"\xed\xa0\x80\"}".to_vec(),
        ),
        body(
            "lone surrogates",
            JSON,
            r#"{"username":"\ud800","password":"\udc00abcdefgh","token":"\ud800","grant_type":"password"}"#,
        ),
        body(
            "reversed surrogate pair",
            JSON,
            r#"{"username":"\udc00\ud800","password":"x"}"#,
        ),
        body(
            "escaped NUL",
            JSON,
            r#"{"username":"ali\u0000ce","password":"correct horse battery staple","grant_type":"password"}"#,
        ),
        body("NUL in a key", JSON, r#"{"user\u0000name":"alice","password":"x"}"#),
        body(
            "raw NUL byte",
            JSON,
            b"{\"username\":\"ali\x00ce\",\"password\":\"x\"}".to_vec(),
        ),
        body(
            "duplicate keys",
            JSON,
            format!(r#"{{"username":"{user}","username":"nobody","password":"x","grant_type":"password"}}"#),
        ),
        body("truncated", JSON, r#"{"username":"alice","pass"#),
        body("trailing garbage", JSON, r#"{"username":"alice","password":"x"} trailing"#),
        body("trailing comma", JSON, r#"{"username":"alice",}"#),
        body("single quotes", JSON, "{'username':'alice'}"),
        body("comments", JSON, "/* hi */ {\"username\":\"alice\"}"),
        body("NaN", JSON, r#"{"username":NaN,"password":Infinity}"#),
        body("number overflow", JSON, r#"{"username":1e999,"password":-1e999}"#),
        body(
            "huge integer",
            JSON,
            r#"{"username":123456789012345678901234567890,"password":"x"}"#,
        ),
        body("UTF-8 BOM", JSON, b"\xef\xbb\xbf{\"username\":\"alice\"}".to_vec()),
        body(
            "UTF-16",
            Some(b"application/json; charset=utf-16"),
            "{\"username\":\"alice\"}"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
        ),
        body(
            "5000 keys",
            JSON,
            format!(
                "{{{}}}",
                (0..5000)
                    .map(|i| format!("\"k{i}\":{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        body(
            "valid credentials",
            JSON,
            json!({ "username": user, "password": PASSWORD, "grant_type": "password" }).to_string(),
        ),
        body(
            "remember_me: maybe",
            JSON,
            json!({ "username": user, "password": PASSWORD, "remember_me": "maybe" }).to_string(),
        ),
        body(
            "remember_me: 2",
            JSON,
            json!({ "username": user, "password": PASSWORD, "remember_me": 2 }).to_string(),
        ),
        body("grant_type: number", JSON, r#"{"grant_type":1}"#),
        body("grant_type: array", JSON, r#"{"grant_type":["password"]}"#),
        body(
            "grant_type: PASSWORD",
            JSON,
            json!({ "grant_type": "PASSWORD", "username": user, "password": PASSWORD }).to_string(),
        ),
        body("grant_type: client_credentials", JSON, r#"{"grant_type":"client_credentials"}"#),
        body("grant_type only", JSON, r#"{"grant_type":"password"}"#),
        body(
            "refresh grant, garbage token",
            JSON,
            r#"{"grant_type":"refresh_token","refresh_token":"rt_' OR '1'='1"}"#,
        ),
        body("mongo operator", JSON, r#"{"username":{"$ne":null},"password":{"$gt":""}}"#),
    ]
}

/// Well-formed JSON with hostile values in every field.
fn json_value_bodies() -> Vec<Body> {
    let mut out = Vec::new();
    let others = [
        json!(12345),
        json!(-1),
        json!(1.5e300),
        json!(true),
        Value::Null,
        json!([]),
        json!({}),
        json!(["a", "b"]),
    ];
    for v in others {
        out.push(body(
            format!("every field = {v}"),
            JSON,
            every_field(&v, "password").to_string(),
        ));
    }
    for (i, s) in NASTY.iter().enumerate() {
        let grant = if i % 2 == 0 {
            "password"
        } else {
            "refresh_token"
        };
        out.push(body(
            format!("every field = {s:?}"),
            JSON,
            every_field(&json!(s), grant).to_string(),
        ));
    }
    out
}

fn form_bodies(user: &str) -> Vec<Body> {
    let sqli = [
        "' OR '1'='1",
        "alice'; DROP TABLE users; --",
        "%' UNION SELECT username, password_hash FROM users --",
    ];
    let mut out = vec![
        body("empty", FORM, ""),
        body(
            "repeated username",
            FORM,
            "username=a&username=b&password=x&grant_type=password",
        ),
        body(
            "repeated grant_type",
            FORM,
            "grant_type=password&grant_type=refresh_token",
        ),
        body("repeated csrf_token", FORM, "csrf_token=a&csrf_token=b"),
        body("lone %", FORM, "%"),
        body("bad escape", FORM, "username=%ZZ&password=%"),
        body("short escape", FORM, "a=%F"),
        body("escaped invalid UTF-8", FORM, "=%FF%FE&username=%C3%28"),
        body(
            "raw invalid UTF-8",
            FORM,
            b"username=\xff\xfe&password=\xc0\xaf".to_vec(),
        ),
        body(
            "escaped surrogate",
            FORM,
            "username=%ED%A0%80&password=%ED%B0%80",
        ),
        body("overlong dot", FORM, "username=%C0%AE%C0%AE&password=x"),
        body(
            "escaped NUL",
            FORM,
            "username=al%00ice&password=correct+horse+battery+staple&grant_type=password",
        ),
        body(
            "RTL override",
            FORM,
            "username=al%E2%80%AEice&password=correct+horse+battery+staple&grant_type=password",
        ),
        body("separators only", FORM, "&&&===&"),
        body("=", FORM, "="),
        body("a==b=c", FORM, "a==b=c"),
        body("plus signs", FORM, "+++=+++"),
        body("brackets", FORM, "username[]=a&username[]=b&password[x]=y"),
        body("semicolons", FORM, "username=alice;password=x"),
        body(
            "traversal tokens",
            FORM,
            "token=..%2F..%2Fetc%2Fpasswd&grant_type=refresh_token&refresh_token=..%2F",
        ),
        body("60 KiB", FORM, sized_form(60 * KIB)),
        body("70 KiB", FORM, sized_form(70 * KIB)),
        body(
            "valid credentials",
            FORM,
            serde_urlencoded::to_string([
                ("username", user),
                ("password", PASSWORD),
                ("grant_type", "password"),
            ])
            .unwrap(),
        ),
    ];
    for s in sqli {
        let encoded = serde_urlencoded::to_string([
            ("username", s),
            ("password", s),
            ("current_password", s),
            ("new_password", s),
            ("grant_type", "password"),
            ("token", s),
        ])
        .unwrap();
        out.push(body(format!("SQL injection {s:?}"), FORM, encoded));
    }
    out
}

fn other_media_bodies(user: &str) -> Vec<Body> {
    let creds =
        json!({ "username": user, "password": PASSWORD, "grant_type": "password" }).to_string();
    let multipart = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n{user}\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{PASSWORD}\r\n--XyZ--\r\n"
    );
    let form = serde_urlencoded::to_string([("username", user), ("password", PASSWORD)]).unwrap();
    vec![
        body("no content type", None, creds.clone()),
        body("no content type, empty", None, ""),
        body("text/plain", Some(b"text/plain"), creds.clone()),
        body(
            "multipart",
            Some(b"multipart/form-data; boundary=XyZ"),
            multipart,
        ),
        body(
            "merge-patch+json",
            Some(b"application/merge-patch+json"),
            creds.clone(),
        ),
        body(
            "application/+json",
            Some(b"application/+json"),
            creds.clone(),
        ),
        body("upper case", Some(b"APPLICATION/JSON"), creds.clone()),
        body(
            "XML",
            Some(b"application/xml"),
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>",
        ),
        body(
            "latin-1 form",
            Some(b"application/x-www-form-urlencoded; charset=iso-8859-1"),
            b"username=caf\xe9&password=x".to_vec(),
        ),
        body(";;;", Some(b";;;"), creds.clone()),
        body("*/*", Some(b"*/*"), creds.clone()),
        body(
            "obs-text content type",
            Some(b"application/json\xff"),
            creds.clone(),
        ),
        body("JSON type, form body", JSON, form),
        body("form type, JSON body", FORM, creds.clone()),
        body(
            "octet-stream",
            Some(b"application/octet-stream"),
            (0..=255u8).collect::<Vec<u8>>(),
        ),
        body("empty content type", Some(b""), creds),
    ]
}

/// Sends every crafted body to every route with every credential.
async fn bodies_everywhere(world: &mut World, category: &'static str, bodies: &[Body]) {
    for (method, template) in ENDPOINTS {
        world.refresh().await;
        for cred in CREDS {
            for b in bodies {
                let mut req =
                    Req::new(category, method, fill(world, template), cred).body(b.bytes.clone());
                if let Some(ct) = b.content_type {
                    req = req.content_type(ct);
                }
                let answer = world.probe(&req).await;
                let reads_body = matches!(
                    (*method, *template),
                    (
                        "POST",
                        "/v1/users" | "/v1/session" | "/v1/token" | "/v1/token/revoke"
                    )
                );
                if reads_body && b.bytes.len() > BODY_LIMIT {
                    assert_eq!(answer.status, 413, "{} ({})", req.describe(), b.label);
                }
                if b.bytes.len() <= BODY_LIMIT {
                    assert_ne!(answer.status, 413, "{} ({})", req.describe(), b.label);
                }
            }
        }
    }
}

#[tokio::test]
async fn malformed_json_bodies_never_get_a_server_error() {
    let mut world = World::new().await;
    let bodies = json_shape_bodies(&world.user.clone());
    bodies_everywhere(&mut world, "malformed JSON bodies", &bodies).await;
    world.assert_still_serving("malformed JSON bodies").await;
}

#[tokio::test]
async fn hostile_json_values_never_get_a_server_error() {
    let mut world = World::new().await;
    bodies_everywhere(&mut world, "hostile JSON values", &json_value_bodies()).await;
    world.assert_still_serving("hostile JSON values").await;
}

#[tokio::test]
async fn crafted_forms_and_other_media_types_never_get_a_server_error() {
    let mut world = World::new().await;
    let user = world.user.clone();
    bodies_everywhere(&mut world, "crafted form bodies", &form_bodies(&user)).await;
    bodies_everywhere(&mut world, "other media types", &other_media_bodies(&user)).await;
    world
        .assert_still_serving("crafted forms and media types")
        .await;
}

// ---------------------------------------------------------------------------
// Crafted query strings and path parameters
// ---------------------------------------------------------------------------

const QUERIES: &[&str] = &[
    "",
    "limit=abc",
    "limit=-1",
    "limit=0",
    "limit=501",
    "limit=99999999999999999999",
    "limit=1&limit=2",
    "limit=%2B5",
    "limit=1e3",
    "before=abc",
    "before=-9223372036854775808",
    "before=9223372036854775808",
    "after=%27%20OR%20%271%27%3D%271",
    "after=%25%27%20UNION%20SELECT%20password_hash%20FROM%20users%20--",
    "after=alice%27%3B%20DROP%20TABLE%20users%3B%20--",
    "after=%00",
    "since=-1",
    "since=9223372036854775807",
    "since=9223372036854775808",
    "since=1.5",
    "since=%00",
    "since=0x10",
    "scope=ALL",
    "scope=all&scope=others",
    "scope=",
    "scope[]=all",
    "scope=%E2%80%AEall",
    "scope=others",
    "scope=all",
    "%",
    "%%",
    "%ZZ",
    "%FF%FE=%C0",
    "a=%00",
    "=&&==",
    "&",
    "a[b][c]=d",
    "a=1;b=2",
    "limit=%ED%A0%80",
    "username=mallory&password=correct%20horse%20battery%20staple&grant_type=password",
];

/// Values for `{id}`, already in URL form.
fn crafted_ids(world: &World, template: &str) -> Vec<String> {
    let real = world.real_id(template);
    vec![
        real.clone(),
        real.to_uppercase(),
        format!("%7B{real}%7D"),
        format!("urn:uuid:{real}"),
        format!("{real}%00"),
        "not-a-uuid".into(),
        "00000000-0000-0000-0000-000000000000".into(),
        "..%2F..%2Fetc%2Fpasswd".into(),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "..%5C..%5Cwindows".into(),
        "%00".into(),
        "%FF%FE".into(),
        "%C0%AE%C0%AE%C0%AF".into(),
        "%ED%A0%80".into(),
        "%27%20OR%20%271%27%3D%271".into(),
        "alice%27%3B%20DROP%20TABLE%20users%3B%20--".into(),
        "%ZZ".into(),
        "%".into(),
        "%E2%80%AE".into(),
        "%20".into(),
        ";".into(),
        "*".into(),
        "a".repeat(2 * KIB),
    ]
}

#[tokio::test]
async fn crafted_query_strings_and_path_parameters_never_get_a_server_error() {
    let mut world = World::new().await;
    for (method, template) in ENDPOINTS {
        world.refresh().await;
        for cred in CREDS {
            for query in QUERIES {
                let target = format!("{}?{query}", fill(&world, template));
                world
                    .probe(&Req::new("crafted query strings", method, target, cred))
                    .await;
            }
        }
        if template.contains("{id}") {
            for cred in CREDS {
                for id in crafted_ids(&world, template) {
                    let target = template.replace("{id}", &id);
                    let answer = world
                        .probe(&Req::new(
                            "crafted path parameters",
                            method,
                            target.clone(),
                            cred,
                        ))
                        .await;
                    // Disabling or enabling nobody is 404 (or 400 for a
                    // parameter that is not even UTF-8). Signing nobody out
                    // is a no-op for a well-formed id (204).
                    let nobody = !id.contains(&world.victim_id)
                        && !id.eq_ignore_ascii_case(&world.victim_id);
                    let well_formed = uuid::Uuid::parse_str(&id).is_ok();
                    if cred == Cred::Admin
                        && template.starts_with("/v1/admin/")
                        && nobody
                        && !(well_formed && template.ends_with("/sessions"))
                    {
                        assert!(
                            matches!(answer.status, 400 | 404),
                            "{method} {target}: {}",
                            answer.status
                        );
                    }
                }
            }
        }
    }
    // The victim was disabled and enabled many times over; it is enabled or
    // not, but the admin API still lists it.
    let r = world
        .hit(&Req::new(
            "crafted path parameters",
            "GET",
            "/v1/admin/users",
            Cred::Admin,
        ))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["users"].as_array().unwrap().len() >= 2);
    world
        .assert_still_serving("crafted queries and path parameters")
        .await;
}

// ---------------------------------------------------------------------------
// Oversized everything
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bodies_over_64_kib_are_413_and_bodies_under_it_are_read() {
    let mut world = World::new().await;
    let cases: &[(&str, Cred)] = &[
        ("/v1/users", Cred::Anon),
        ("/v1/session", Cred::Anon),
        ("/v1/token", Cred::Anon),
        ("/v1/token/revoke", Cred::Anon),
        ("/v1/token/introspect", Cred::Verifier),
        ("/v1/token/introspect", Cred::Admin),
        ("/v1/me/password", Cred::Bearer),
        ("/v1/me/password", Cred::Cookie),
    ];
    for (path, cred) in cases {
        for (label, ct, under, over) in [
            (
                "json",
                JSON,
                sized_json(BODY_LIMIT - 1),
                sized_json(70 * KIB),
            ),
            (
                "form",
                FORM,
                sized_form(BODY_LIMIT - 1),
                sized_form(70 * KIB),
            ),
            ("none", None, sized_json(60 * KIB), sized_json(70 * KIB)),
        ] {
            let mut small = Req::new("oversized bodies", "POST", *path, *cred).body(under);
            let mut big = Req::new("oversized bodies", "POST", *path, *cred).body(over);
            if let Some(ct) = ct {
                small = small.content_type(ct);
                big = big.content_type(ct);
            }
            let r = world.probe(&big).await;
            assert_eq!(r.status, 413, "{label}: {}", big.describe());
            let r = world.probe(&small).await;
            assert!(
                r.status != 413 && r.status < 500,
                "{label}: {} answered {}",
                small.describe(),
                r.status
            );
            if ct.is_none() {
                assert_eq!(r.status, 415, "{}", small.describe());
            }
        }
    }
    // The limit is exact: 64 KiB is read, one byte more is not.
    for (size, expect_413) in [(BODY_LIMIT, false), (BODY_LIMIT + 1, true)] {
        for (ct, bytes) in [(JSON, sized_json(size)), (FORM, sized_form(size))] {
            let req = Req::new("oversized bodies", "POST", "/v1/users", Cred::Anon)
                .content_type(ct.unwrap())
                .body(bytes);
            let r = world.probe(&req).await;
            assert_eq!(r.status == 413, expect_413, "{size} bytes: {}", r.status);
        }
    }
    // A cookie-authenticated form without the CSRF header has its body read
    // (for the csrf_token field) before any handler: still 413.
    let mut req = Req::new("oversized bodies", "POST", "/v1/me/password", Cred::Anon)
        .content_type(b"application/x-www-form-urlencoded")
        .body(sized_form(70 * KIB));
    req = req.header(
        "cookie",
        HeaderValue::from_str(&format!("{}={}", world.cookie_name, world.cookie)).unwrap(),
    );
    let r = world.probe(&req).await;
    assert_eq!(r.status, 413, "{}", req.describe());
    // A chunked body without Content-Length is limited the same way.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..70).map(|_| Ok(vec![b'a'; KIB])).collect();
    world.count("oversized bodies");
    let r = tokio::time::timeout(
        LIMIT,
        world
            .http
            .post(world.server.url("/v1/users"))
            .header(CONTENT_TYPE, "application/json")
            .body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
            .send(),
    )
    .await
    .expect("chunked 70 KiB body hangs");
    if let Ok(r) = r {
        assert_eq!(r.status(), 413, "chunked 70 KiB body");
        problem(r, 413).await;
    }
    // A megabyte: refused, or the connection closed while it was sent.
    let req = Req::new("oversized bodies", "POST", "/v1/users", Cred::Anon)
        .content_type(b"application/json")
        .body(vec![b' '; 1024 * KIB]);
    if let Some(r) = world.hit_or_closed(&req).await {
        assert_eq!(r.status, 413);
    }
    world.assert_still_serving("oversized bodies").await;
}

#[tokio::test]
async fn oversized_headers_tokens_cookies_and_paths_never_get_a_server_error() {
    let mut world = World::new().await;
    let filler = HeaderValue::from_str(&"a".repeat(20 * KIB)).unwrap();
    // A 20 KiB header on every route.
    for (method, template) in ENDPOINTS {
        for cred in [Cred::Anon, Cred::Admin, Cred::Bearer] {
            let req = Req::new("20 KiB header", method, fill(&world, template), cred)
                .header("x-filler", filler.clone());
            world.hit_or_closed(&req).await;
        }
    }
    // 20 KiB in headers the server reads.
    for (name, method, path, cred) in [
        ("user-agent", "POST", "/v1/session", Cred::Anon),
        ("origin", "POST", "/v1/session", Cred::Anon),
        (
            "origin",
            "DELETE",
            "/v1/me/sessions?scope=others",
            Cred::Cookie,
        ),
        (
            "x-csrf-token",
            "DELETE",
            "/v1/me/sessions?scope=others",
            Cred::Cookie,
        ),
        ("sec-fetch-site", "POST", "/v1/users", Cred::Anon),
        ("accept", "GET", "/v1/revocations", Cred::Verifier),
        ("last-event-id", "GET", "/v1/revocations", Cred::Verifier),
        ("x-forwarded-for", "POST", "/v1/token", Cred::Anon),
        ("x-request-id", "GET", "/healthz", Cred::Anon),
    ] {
        let creds =
            json!({ "username": world.user, "password": PASSWORD, "grant_type": "password" });
        let req = Req::new("20 KiB header", method, path, cred)
            .json(&creds)
            .header(name, filler.clone());
        if let Some(r) = world.hit_or_closed(&req).await
            && (200..300).contains(&r.status)
            && destructive(&req.method, path)
        {
            world.refresh().await;
        }
    }
    // The session made with a 20 KiB user agent lists fine.
    let r = world
        .hit(&Req::new(
            "20 KiB header",
            "GET",
            "/v1/me/sessions",
            Cred::Bearer,
        ))
        .await;
    assert_eq!(r.status, 200);

    // A 9 KiB bearer token: well-formed JWT shape, and plain garbage.
    let jwt_shaped = format!(
        "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6IngifQ.{}.c2ln",
        "A".repeat(9 * KIB)
    );
    for token in [jwt_shaped, "x".repeat(9 * KIB)] {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        for (method, template) in ENDPOINTS {
            let req = Req::new("9 KiB bearer", method, fill(&world, template), Cred::Anon)
                .header("authorization", value.clone());
            let r = world.hit(&req).await;
            if NEEDS_CREDENTIALS.contains(&(*method, *template)) {
                assert_eq!(r.status, 401, "{}", req.describe());
            }
        }
    }

    // A 10 KiB cookie: a live session drowned in padding is ignored whole,
    // and a 10 KiB session value is no session.
    let drowned = format!(
        "{}={}; pad={}",
        world.cookie_name,
        world.cookie,
        "p".repeat(10 * KIB)
    );
    let huge_value = format!("{}=ts_{}", world.cookie_name, "A".repeat(10 * KIB));
    for cookie in [drowned, huge_value] {
        let value = HeaderValue::from_str(&cookie).unwrap();
        for (method, template) in ENDPOINTS {
            let req = Req::new("10 KiB cookie", method, fill(&world, template), Cred::Anon)
                .header("cookie", value.clone())
                .header("x-csrf-token", HeaderValue::from_str(&world.csrf).unwrap());
            let r = world.hit(&req).await;
            if NEEDS_CREDENTIALS.contains(&(*method, *template)) {
                assert!(
                    matches!(r.status, 401),
                    "{} answered {}",
                    req.describe(),
                    r.status
                );
            }
        }
        // Signing in with such a cookie on the request still works.
        let req = Req::new("10 KiB cookie", "POST", "/v1/session", Cred::Anon)
            .json(&json!({ "username": world.user, "password": PASSWORD }))
            .header("cookie", value);
        assert_eq!(world.hit(&req).await.status, 200);
    }
    world.refresh().await;

    // A 2 KiB path.
    let long = "a".repeat(2 * KIB);
    let long_escaped = "%41".repeat(700);
    for (method, target, cred, expected) in [
        ("GET", format!("/{long}"), Cred::Anon, Some(404)),
        ("GET", format!("/v1/me/{long}"), Cred::Bearer, Some(404)),
        (
            "DELETE",
            format!("/v1/me/sessions/{long}"),
            Cred::Bearer,
            Some(404),
        ),
        (
            "DELETE",
            format!("/v1/me/sessions/{long_escaped}"),
            Cred::Cookie,
            Some(404),
        ),
        (
            "POST",
            format!("/v1/admin/users/{long}/disable"),
            Cred::Admin,
            Some(404),
        ),
        (
            "POST",
            format!("/v1/admin/users/{long}/enable"),
            Cred::Anon,
            Some(401),
        ),
        (
            "DELETE",
            format!("/v1/admin/users/{long}/sessions"),
            Cred::Admin,
            Some(404),
        ),
        (
            "GET",
            format!("/v1/revocations?since={}", "9".repeat(2 * KIB)),
            Cred::Verifier,
            Some(400),
        ),
        (
            "GET",
            format!("/v1/admin/users?limit=1&after={long}"),
            Cred::Admin,
            Some(200),
        ),
        (
            "GET",
            format!("/v1/admin/audit?before={}", "1".repeat(2 * KIB)),
            Cred::Admin,
            Some(400),
        ),
        ("POST", format!("/v1/token/{long}"), Cred::Anon, Some(404)),
        ("GET", format!("/{}", "../".repeat(700)), Cred::Anon, None),
        (
            "GET",
            format!("/{}", "%2e%2e%2f".repeat(230)),
            Cred::Anon,
            Some(404),
        ),
    ] {
        let req = Req::new("2 KiB path", method, target, cred);
        let r = world.hit(&req).await;
        if let Some(expected) = expected {
            assert_eq!(r.status, expected, "{}", req.describe());
        }
    }

    // A 70 KiB request target (more than the HTTP client will build, so
    // written by hand) and over a hundred headers: refused or closed.
    for target in [
        format!("/v1/admin/users?after={}", "q".repeat(70 * KIB)),
        format!("/v1/admin/users/{}/disable", "a".repeat(70 * KIB)),
    ] {
        world.count("huge URI and header count");
        let request = raw_request(
            &world,
            b"POST",
            target.as_bytes(),
            &raw_cred(&world, Cred::Admin),
            b"",
        );
        raw_exchange(world.server.addr, &request, b"POST", target.as_bytes()).await;
    }
    let mut req = Req::new("huge URI and header count", "GET", "/v1/me", Cred::Bearer);
    for i in 0..120 {
        req = req.header(&format!("x-h{i}"), HeaderValue::from_static("v"));
    }
    world.hit_or_closed(&req).await;
    let mut req = Req::new("huge URI and header count", "GET", "/v1/me", Cred::Anon);
    for _ in 0..90 {
        req = req.header(
            "cookie",
            HeaderValue::from_str(&format!(
                "{}=ts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                world.cookie_name
            ))
            .unwrap(),
        );
    }
    if let Some(r) = world.hit_or_closed(&req).await {
        assert!(r.status == 401 || r.status == 431, "{}", r.status);
    }
    world
        .assert_still_serving("oversized headers, tokens, cookies, paths")
        .await;
}

// ---------------------------------------------------------------------------
// Seeded fuzzing
// ---------------------------------------------------------------------------

/// xorshift64: deterministic, seeded, good enough to shake inputs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap()
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.byte()).collect()
    }

    fn text(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| match self.below(4) {
                0 => *self.pick(TRICKY_CHARS),
                1 => char::from_u32(u32::try_from(self.next() % 0x11_0000).unwrap())
                    .unwrap_or('\u{FFFD}'),
                _ => char::from(b' ' + u8::try_from(self.below(95)).unwrap()),
            })
            .collect()
    }

    fn json(&mut self, depth: usize) -> Value {
        const FIELDS: &[&str] = &[
            "username",
            "password",
            "current_password",
            "new_password",
            "grant_type",
            "token",
            "refresh_token",
            "remember_me",
            "csrf_token",
        ];
        match self.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(self.one_in(2)),
            2 => json!(i64::from_le_bytes(self.next().to_le_bytes())),
            3 => json!(f64::from_bits(self.next()).clamp(-1e300, 1e300)),
            4 => match self.below(3) {
                0 => json!(self.pick(NASTY)),
                1 => json!(self.pick(&["password", "refresh_token", "all", "others", "on"])),
                _ => json!(self.text(40)),
            },
            5 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => {
                let mut map = serde_json::Map::new();
                for _ in 0..self.below(6) {
                    let key = if self.one_in(4) {
                        self.text(8)
                    } else {
                        (*self.pick(FIELDS)).to_owned()
                    };
                    map.insert(key, self.json(depth - 1));
                }
                Value::Object(map)
            }
        }
    }

    /// Random edits: flips, insertions, deletions, duplications.
    fn mutate(&mut self, mut data: Vec<u8>) -> Vec<u8> {
        for _ in 0..=self.below(8) {
            let at = self.below(data.len() + 1);
            match self.below(4) {
                0 if at < data.len() => data[at] = self.byte(),
                1 => data.insert(at, self.byte()),
                2 if at < data.len() => {
                    data.remove(at);
                }
                _ => {
                    let end = (at + self.below(16)).min(data.len());
                    let slice = data[at..end].to_vec();
                    data.splice(at..at, slice);
                }
            }
        }
        data
    }
}

/// Percent-encodes everything but unreserved characters.
fn pct(bytes: &[u8]) -> String {
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

fn fuzz_path(rng: &mut Rng, world: &World, template: &str) -> String {
    let id = match rng.below(4) {
        0 => world.real_id(template),
        1 => pct(rng.pick(NASTY).as_bytes()),
        2 => pct(&rng.bytes(40)),
        _ => pct(rng.text(20).as_bytes()),
    };
    let mut path = template.replace("{id}", &id);
    match rng.below(10) {
        0 => path = format!("{path}/{}", pct(&rng.bytes(30))),
        1 => path = format!("/{}", pct(&rng.bytes(60))),
        2 => {
            path = format!(
                "{path}{}",
                rng.pick(&["/", "//", "/.", "/..", "%2F", ";x", "%00", "%"])
            )
        }
        3 => path = path.replacen("/v1", &format!("/{}", pct(&rng.bytes(4))), 1),
        _ => {}
    }
    if rng.one_in(2) {
        let mut query = Vec::new();
        for _ in 0..=rng.below(3) {
            let key = *rng.pick(&["limit", "before", "after", "since", "scope", "x", ""]);
            let value = match rng.below(5) {
                0 => pct(&rng.bytes(20)),
                1 => pct(rng.text(10).as_bytes()),
                2 => (*rng.pick(&["%", "%Z", "%%", "%FF", "-1", "0", "501", "all", "others"]))
                    .to_owned(),
                3 => i64::from_le_bytes(rng.next().to_le_bytes()).to_string(),
                _ => u64::from(u32::try_from(rng.below(1000)).unwrap()).to_string(),
            };
            query.push(format!("{key}={value}"));
        }
        path = format!(
            "{path}?{}",
            query.join(if rng.one_in(5) { ";" } else { "&" })
        );
    }
    path
}

fn fuzz_header_value(rng: &mut Rng, world: &World, name: &str) -> Vec<u8> {
    let meaningful: Vec<String> = match name {
        "accept" => vec![
            "text/event-stream".into(),
            "application/json".into(),
            "*/*;q=0".into(),
        ],
        "origin" => vec![
            "null".into(),
            "http://evil.example".into(),
            world.server.base.clone(),
            "http://[::1".into(),
        ],
        "sec-fetch-site" => vec![
            "cross-site".into(),
            "same-site".into(),
            "same-origin".into(),
            "none".into(),
        ],
        "last-event-id" => vec![
            "-1".into(),
            "99999999999999999999".into(),
            " 5 ".into(),
            "0".into(),
        ],
        "x-csrf-token" => vec![
            world.csrf.clone(),
            format!("{}x", world.csrf),
            String::new(),
        ],
        "cookie" => vec![
            format!("{}={}", world.cookie_name, world.cookie),
            format!("{}=\"{}\"", world.cookie_name, world.cookie),
            format!(
                "{0}=ts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; {0}={1}",
                world.cookie_name, world.cookie
            ),
            "=; ;;".into(),
        ],
        "authorization" => vec![
            "Bearer".into(),
            "Bearer ".into(),
            "Basic YWxpY2U6eA==".into(),
            format!("bearer   {}  ", world.access),
            format!("Bearer {}x", world.access),
            format!("Bearer {ADMIN_TOKEN} {ADMIN_TOKEN}"),
            format!(
                "Bearer {}",
                &INTROSPECTION_SECRET[..INTROSPECTION_SECRET.len() - 1]
            ),
        ],
        "content-type" => vec![
            "application/json".into(),
            "application/x-www-form-urlencoded".into(),
            "text/plain".into(),
            "multipart/form-data; boundary=".into(),
        ],
        "x-forwarded-for" => vec!["1.2.3.4".into(), "::1, garbage".into()],
        _ => vec![],
    };
    if !meaningful.is_empty() && rng.one_in(2) {
        return rng.pick(&meaningful).clone().into_bytes();
    }
    // Any byte a header value may hold: visible ASCII, tab, obs-text.
    let len = rng.below(120);
    (0..len)
        .map(|_| {
            loop {
                let b = rng.byte();
                if b == b'\t' || (0x20..0x7F).contains(&b) || b >= 0x80 {
                    break b;
                }
            }
        })
        .collect()
}

const FUZZ_HEADERS: &[&str] = &[
    "accept",
    "origin",
    "sec-fetch-site",
    "last-event-id",
    "x-csrf-token",
    "cookie",
    "authorization",
    "content-type",
    "user-agent",
    "x-forwarded-for",
    "x-request-id",
    "accept-language",
    "if-none-match",
    "range",
    "referer",
    "forwarded",
    "x-http-method-override",
    "expect-ct",
];

#[tokio::test]
async fn seeded_fuzz_over_http_never_gets_a_server_error() {
    let mut world = World::new().await;
    let mut rng = Rng::new(0x7e55_e4a0_5eed_0001);
    let user = world.user.clone();
    let creds_json =
        json!({ "username": user, "password": PASSWORD, "grant_type": "password" }).to_string();
    let creds_form = serde_urlencoded::to_string([
        ("username", user.as_str()),
        ("password", PASSWORD),
        ("grant_type", "password"),
    ])
    .unwrap();
    for i in 0..300 {
        if i % 50 == 0 {
            world.refresh().await;
        }
        let (method, template) = *rng.pick(ENDPOINTS);
        let method = match rng.below(10) {
            0 => (*rng.pick(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]))
                .to_owned(),
            1 => (0..=rng.below(10))
                .map(|_| char::from(b'A' + u8::try_from(rng.below(26)).unwrap()))
                .collect(),
            _ => method.to_owned(),
        };
        let target = fuzz_path(&mut rng, &world, template);
        let cred = *rng.pick(&CREDS);
        let mut req = Req::new("seeded fuzz (HTTP)", &method, target, cred);
        for _ in 0..rng.below(5) {
            let name = if rng.one_in(6) {
                let len = 1 + rng.below(12);
                (0..len)
                    .map(|_| char::from(*rng.pick(b"abcdefghijklmnopqrstuvwxyz-0123456789")))
                    .collect::<String>()
            } else {
                (*rng.pick(FUZZ_HEADERS)).to_owned()
            };
            let value = fuzz_header_value(&mut rng, &world, &name);
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value),
            ) {
                if name == AUTHORIZATION && cred != Cred::Anon {
                    continue;
                }
                req.headers.push((name, value));
            }
        }
        let (ct, bytes): (Option<&[u8]>, Vec<u8>) = match rng.below(7) {
            0 => (None, Vec::new()),
            1 => (
                *rng.pick(&[JSON, FORM, None, Some(&b"text/plain"[..])]),
                rng.bytes(2048),
            ),
            2 => (JSON, rng.mutate(creds_json.clone().into_bytes())),
            3 => (FORM, rng.mutate(creds_form.clone().into_bytes())),
            4 => (JSON, rng.json(4).to_string().into_bytes()),
            5 => (
                *rng.pick(&[JSON, FORM]),
                every_field(&json!(rng.pick(NASTY)), "password")
                    .to_string()
                    .into_bytes(),
            ),
            _ => {
                let object = rng_json_object(&mut rng);
                (*rng.pick(&[JSON, FORM]), rng.mutate(object))
            }
        };
        if let Some(ct) = ct {
            req = req.content_type(ct);
        }
        if !bytes.is_empty() || rng.one_in(2) {
            req = req.body(bytes);
        }
        world.probe(&req).await;
    }
    world.assert_still_serving("seeded fuzz over HTTP").await;
}

fn rng_json_object(rng: &mut Rng) -> Vec<u8> {
    let mut v = rng.json(3);
    if !v.is_object() {
        v = json!({ "username": v, "password": rng.text(20) });
    }
    v.to_string().into_bytes()
}

/// What a raw exchange came to.
enum Raw {
    /// The server closed (or reset) the connection without an answer.
    Closed,
    Answered {
        status: u16,
        ours: bool,
    },
}

/// Where the head of an HTTP answer ends, if it has arrived.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The value of header `name` in an answer head.
fn head_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Whether `buf` holds a whole answer: the head and, by Content-Length, the
/// body; an event stream never ends, so its head is enough.
fn complete(buf: &[u8]) -> bool {
    let Some(end) = head_end(buf) else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    if head_header(&head, "content-type").is_some_and(|v| v.starts_with("text/event-stream")) {
        return true;
    }
    match head_header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(length) => buf.len() >= end + 4 + length,
        None => false,
    }
}

/// Writes `request` on a fresh connection and reads the answer (requests
/// say `Connection: close`, so the server then closes), within [`LIMIT`].
async fn raw_exchange(addr: SocketAddr, request: &[u8], method: &[u8], path: &[u8]) -> Raw {
    let what = format!("raw request {}", clip(request, 600));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        // The server may answer and close before taking the whole request.
        let _ = stream.write_all(request).await;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if complete(&buf) {
                break;
            }
        }
        buf
    };
    let buf = tokio::time::timeout(LIMIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer within {LIMIT:?} (hang) for {what}"));
    if buf.is_empty() {
        return Raw::Closed;
    }
    let split = head_end(&buf)
        .unwrap_or_else(|| panic!("incomplete answer {} for {what}", clip(&buf, 300)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let body = &buf[split + 4..];
    let status_line = head.split("\r\n").next().unwrap_or("");
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line `{status_line}` for {what}"));
    assert!(
        status < 500,
        "server error {status} {} for {what}",
        clip(body, 300)
    );
    // Our router adds its security headers to everything it answers; a
    // request the HTTP layer refused before routing (bad request line, bad
    // header) gets a bare 4xx with no body to check.
    let ours = head_header(&head, "x-content-type-options").is_some();
    let streaming =
        head_header(&head, "content-type").is_some_and(|v| v.starts_with("text/event-stream"));
    if ours && !streaming {
        let method = Method::from_bytes(method).unwrap_or(Method::GET);
        let path = String::from_utf8_lossy(path).into_owned();
        verify(
            &method,
            &path,
            status,
            head_header(&head, "content-type").unwrap_or(""),
            body,
            &what,
        );
    }
    Raw::Answered { status, ours }
}

fn raw_request(
    world: &World,
    method: &[u8],
    path: &[u8],
    headers: &[(Vec<u8>, Vec<u8>)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(world.server.addr.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

fn raw_cred(world: &World, cred: Cred) -> Vec<(Vec<u8>, Vec<u8>)> {
    let bearer = |t: &str| {
        vec![(
            b"Authorization".to_vec(),
            format!("Bearer {t}").into_bytes(),
        )]
    };
    match cred {
        Cred::Anon => vec![],
        Cred::Cookie => vec![
            (
                b"Cookie".to_vec(),
                format!("{}={}", world.cookie_name, world.cookie).into_bytes(),
            ),
            (b"X-CSRF-Token".to_vec(), world.csrf.clone().into_bytes()),
        ],
        Cred::Bearer => bearer(&world.access),
        Cred::Admin => bearer(ADMIN_TOKEN),
        Cred::Verifier => bearer(INTROSPECTION_SECRET),
    }
}

#[tokio::test]
async fn raw_bytes_in_paths_headers_and_bodies_never_get_a_server_error() {
    let mut world = World::new().await;
    let addr = world.server.addr;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut tally = |outcome: Raw| {
        let key = match outcome {
            Raw::Closed => "closed".to_owned(),
            Raw::Answered { status, ours: true } => format!("{status} by the router"),
            Raw::Answered {
                status,
                ours: false,
            } => format!("{status} by the HTTP layer"),
        };
        *outcomes.entry(key).or_default() += 1;
    };

    // Path traversal and encoding tricks the HTTP client would normalise.
    let fixed: &[(&str, &[u8], Cred)] = &[
        ("GET", b"/v1/me/sessions/../../../etc/passwd", Cred::Bearer),
        (
            "DELETE",
            b"/v1/me/sessions/../../../etc/passwd",
            Cred::Bearer,
        ),
        (
            "DELETE",
            b"/v1/me/sessions/..%2F..%2Fetc%2Fpasswd",
            Cred::Cookie,
        ),
        (
            "POST",
            b"/v1/admin/users/../../../etc/passwd/disable",
            Cred::Admin,
        ),
        (
            "POST",
            b"/v1/admin/users/..%2F..%2F..%2Fetc%2Fpasswd/disable",
            Cred::Admin,
        ),
        ("POST", b"/v1/admin/users/%C0%AE%C0%AE/disable", Cred::Admin),
        ("DELETE", b"/v1/admin/users/%FF/sessions", Cred::Admin),
        ("DELETE", b"/v1/admin/users/\xff\xfe/sessions", Cred::Admin),
        ("GET", b"/..", Cred::Anon),
        ("GET", b"/../../../../etc/passwd", Cred::Anon),
        ("GET", b"/%2e%2e/%2e%2e/etc/passwd", Cred::Anon),
        ("GET", b"//v1//me", Cred::Bearer),
        ("GET", b"/v1/me/", Cred::Bearer),
        ("GET", b"/v1/me;x=1", Cred::Bearer),
        ("GET", b"/v1/me%00", Cred::Bearer),
        ("GET", b"/v1/me\x00", Cred::Bearer),
        ("GET", b"/v1/me\x7f", Cred::Bearer),
        ("GET", b"/v1/me#fragment", Cred::Bearer),
        ("GET", b"/\\..\\..\\windows\\win.ini", Cred::Anon),
        ("GET", b"/v1/admin/users?after=\xff\xfe", Cred::Admin),
        ("GET", b"/v1/admin/users?after=%", Cred::Admin),
        ("GET", b"/v1/revocations?since=%ZZ", Cred::Verifier),
        ("GET", b"*", Cred::Anon),
        ("GET", b"v1/me", Cred::Bearer),
        ("GET", b"http://evil.example/v1/me", Cred::Bearer),
        ("POST", b"/v1/token?grant_type=password", Cred::Anon),
        ("GET", b"/\xe2\x80\xaeuser", Cred::Anon),
    ];
    for (method, path, cred) in fixed {
        world.count("raw fixed requests");
        let request = raw_request(
            &world,
            method.as_bytes(),
            path,
            &raw_cred(&world, *cred),
            b"",
        );
        tally(raw_exchange(addr, &request, method.as_bytes(), path).await);
    }

    let mut rng = Rng::new(0xbad_c0de_f00d);
    for i in 0..300 {
        if i % 60 == 0 {
            world.refresh().await;
        }
        // A third of the requests break HTTP framing itself (bytes no
        // client sends in methods, targets and headers); the rest are well
        // framed, so that hostile content reaches the router.
        let wild = rng.one_in(3);
        let strip = |bytes: Vec<u8>, banned: &[u8]| -> Vec<u8> {
            bytes.into_iter().filter(|b| !banned.contains(b)).collect()
        };
        let (method, template) = *rng.pick(ENDPOINTS);
        let method: Vec<u8> = match rng.below(8) {
            0 if wild => strip(rng.bytes(8), b" \r\n"),
            1 => b"get".to_vec(),
            2 => rng
                .pick(&["PUT", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT"])
                .as_bytes()
                .to_vec(),
            _ => method.as_bytes().to_vec(),
        };
        let mut path = template
            .replace("{id}", &world.real_id(template))
            .into_bytes();
        // Bytes a request target may hold as they are.
        let target_safe = |b: &u8| b.is_ascii_graphic() && !b"#".contains(b);
        match rng.below(5) {
            0 => {
                let at = rng.below(path.len() + 1);
                let junk = if wild {
                    strip(rng.bytes(24), b" \r\n")
                } else {
                    rng.bytes(24).into_iter().filter(target_safe).collect()
                };
                path.splice(at..at, junk);
            }
            1 => {
                path.push(b'?');
                if wild {
                    path.extend(strip(rng.bytes(40), b" \r\n"));
                } else {
                    path.extend(rng.bytes(40).into_iter().filter(target_safe));
                }
            }
            2 => {
                path.extend_from_slice(pct(&rng.bytes(20)).as_bytes());
            }
            3 if wild => {
                // Delimiters too: a space or a bare CR inside the target.
                let at = rng.below(path.len() + 1);
                path.insert(at, *rng.pick(b" \r\t\x0b\x0c"));
            }
            _ => {}
        }
        let mut headers = raw_cred(&world, *rng.pick(&CREDS));
        for _ in 0..rng.below(6) {
            let name: Vec<u8> = if wild && rng.one_in(3) {
                strip(rng.bytes(12), b"\r\n")
            } else {
                rng.pick(FUZZ_HEADERS).as_bytes().to_vec()
            };
            let value: Vec<u8> = if wild && rng.one_in(2) {
                // NUL, DEL and other bytes no client would send.
                strip(rng.bytes(60), b"\r\n")
            } else {
                let name = String::from_utf8_lossy(&name).into_owned();
                fuzz_header_value(&mut rng, &world, &name)
            };
            headers.push((name, value));
        }
        if wild && rng.one_in(5) {
            // An obsolete folded header line.
            headers.push((b"X-Folded".to_vec(), b"a\r\n b".to_vec()));
        }
        let body = match rng.below(3) {
            0 => Vec::new(),
            1 => rng.bytes(1024),
            _ => rng_json_object(&mut rng),
        };
        if rng.one_in(2) {
            let ct = rng
                .pick(&[
                    &b"application/json"[..],
                    b"application/x-www-form-urlencoded",
                    b"text/plain",
                ])
                .to_vec();
            headers.push((b"Content-Type".to_vec(), ct));
        }
        world.count("seeded fuzz (raw bytes)");
        let request = raw_request(&world, &method, &path, &headers, &body);
        tally(raw_exchange(addr, &request, &method, &path).await);
    }
    eprintln!("[hostile] raw outcomes: {outcomes:?}");
    world.assert_still_serving("raw bytes").await;
}

// ---------------------------------------------------------------------------
// SQL injection and Unicode tricks in usernames
// ---------------------------------------------------------------------------

impl World {
    async fn register_as(&self, category: &'static str, username: &str) -> Answer {
        self.hit(
            &Req::new(category, "POST", "/v1/users", Cred::Anon)
                .json(&json!({ "username": username, "password": PASSWORD })),
        )
        .await
    }

    /// Cookie sign-in; returns the answer (200 with the user, or a refusal).
    async fn sign_in_as(&self, category: &'static str, username: &str, password: &str) -> Answer {
        self.cool_down();
        self.hit(
            &Req::new(category, "POST", "/v1/session", Cred::Anon)
                .json(&json!({ "username": username, "password": password })),
        )
        .await
    }

    /// Password grant then `GET /v1/me`; the user's id, or the grant's status.
    async fn token_user(
        &self,
        category: &'static str,
        username: &str,
        password: &str,
    ) -> Result<String, u16> {
        self.cool_down();
        let r = self
            .hit(
                &Req::new(category, "POST", "/v1/token", Cred::Anon)
                    .content_type(b"application/x-www-form-urlencoded")
                    .body(
                        serde_urlencoded::to_string([
                            ("grant_type", "password"),
                            ("username", username),
                            ("password", password),
                        ])
                        .unwrap(),
                    ),
            )
            .await;
        if r.status != 200 {
            return Err(r.status);
        }
        let access = r.json()["access_token"].as_str().unwrap().to_owned();
        let me = self
            .hit(&Req::new(category, "GET", "/v1/me", Cred::Anon).header(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {access}")).unwrap(),
            ))
            .await;
        assert_eq!(me.status, 200);
        Ok(me.json()["id"].as_str().unwrap().to_owned())
    }
}

#[tokio::test]
async fn sql_injection_in_usernames_and_passwords_is_plain_data() {
    let mut world = World::new().await;
    const CAT: &str = "SQL injection";
    let alice = world.register_as(CAT, "alice").await;
    assert_eq!(alice.status, 201);
    let alice_id = alice.json()["id"].as_str().unwrap().to_owned();
    let injections = [
        "alice'; DROP TABLE users; --",
        "' OR '1'='1",
        "%' UNION SELECT id, username FROM users --",
        "alice' --",
        "alice'/*",
        "\" OR \"\"=\"",
        "1; SELECT * FROM sqlite_master",
        "alice' OR 1=1 --",
        "'); DELETE FROM sessions; --",
        "%",
        "_",
    ];
    let mut registered = vec![alice_id.clone()];
    for name in injections {
        let r = world.register_as(CAT, name).await;
        match r.status {
            201 => {
                let id = r.json()["id"].as_str().unwrap().to_owned();
                assert_eq!(r.json()["username"], name);
                assert_ne!(id, alice_id, "{name:?} is not alice");
                registered.push(id.clone());
                let s = world.sign_in_as(CAT, name, PASSWORD).await;
                assert_eq!(s.status, 200, "signing in as {name:?}");
                assert_eq!(s.json()["user"]["id"], id.as_str());
                assert_eq!(s.json()["user"]["username"], name);
                assert_eq!(world.token_user(CAT, name, PASSWORD).await, Ok(id.clone()));
                // Registered once; a second time is a conflict.
                assert_eq!(
                    world.register_as(CAT, name).await.status,
                    409,
                    "{name:?} again"
                );
                // The wrong password is still wrong.
                assert_eq!(
                    world.sign_in_as(CAT, name, "not the password").await.status,
                    401
                );
            }
            400 => {
                assert_eq!(
                    world.sign_in_as(CAT, name, PASSWORD).await.status,
                    401,
                    "{name:?}"
                );
            }
            other => panic!("registering {name:?} answered {other}"),
        }
    }
    // Injections as passwords, or as usernames that try to comment out the
    // password check, never sign anyone in.
    for (username, password) in [
        ("alice", "' OR '1'='1"),
        ("alice", "' OR 1=1 --"),
        ("alice", "x' OR 'x'='x"),
        ("alice' --", "anything at all"),
        ("alice' OR '1'='1", "anything at all"),
        ("' OR username='alice' --", "anything at all"),
        ("%", "anything at all"),
        ("_lice", PASSWORD),
        ("ALIC_", PASSWORD),
        ("al%", PASSWORD),
    ] {
        let r = world.sign_in_as(CAT, username, password).await;
        // `alice' --` and friends were registered above with PASSWORD, not
        // with these passwords.
        assert_eq!(r.status, 401, "signing in as {username:?} / {password:?}");
        assert_eq!(
            world.token_user(CAT, username, password).await,
            Err(400),
            "password grant for {username:?} / {password:?}"
        );
    }
    // Injections in the admin API's cursor are data too.
    for after in [
        "' OR '1'='1",
        "%' UNION SELECT 1 --",
        "%",
        "_",
        "alice'; DROP TABLE users; --",
    ] {
        let r = world
            .hit(&Req::new(
                CAT,
                "GET",
                format!("/v1/admin/users?limit=500&after={}", pct(after.as_bytes())),
                Cred::Admin,
            ))
            .await;
        assert_eq!(r.status, 200, "after={after:?}");
        for user in r.json()["users"].as_array().unwrap() {
            let normalized = tessera_core::username::normalize(user["username"].as_str().unwrap());
            assert!(normalized.as_str() > after, "{after:?} < {normalized:?}");
        }
    }
    // The users table is intact: everyone is still there and alice signs in.
    let r = world
        .hit(&Req::new(
            CAT,
            "GET",
            "/v1/admin/users?limit=500",
            Cred::Admin,
        ))
        .await;
    assert_eq!(r.status, 200);
    let ids: Vec<String> = r.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &registered {
        assert!(ids.contains(id), "user {id} is gone");
    }
    let s = world.sign_in_as(CAT, "alice", PASSWORD).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json()["user"]["id"], alice_id.as_str());
    assert_eq!(world.token_user(CAT, "alice", PASSWORD).await, Ok(alice_id));
    world.assert_still_serving("SQL injection").await;
}

#[tokio::test]
async fn unicode_lookalikes_collide_or_stay_apart_and_invisible_characters_are_refused() {
    let mut world = World::new().await;
    const CAT: &str = "Unicode tricks";
    let alice = world.register_as(CAT, "alice").await;
    assert_eq!(alice.status, 201);
    let alice_id = alice.json()["id"].as_str().unwrap().to_owned();

    // Width and case variants are the same account.
    for variant in ["ａｌｉｃｅ", "ALICE", "Alice", "ＡＬＩＣＥ"] {
        let r = world.register_as(CAT, variant).await;
        assert_eq!(r.status, 409, "registering {variant:?}");
        assert_eq!(r.json()["type"], "urn:tessera:problem:username-taken");
    }

    // Invisible and direction-changing characters are refused, whatever the
    // encoding, and never sign in as alice.
    let invisible = [
        "ali\u{202E}ce",
        "\u{202E}ecila",
        "alice\u{202C}",
        "ali\u{2066}ce",
        "ali\u{200D}ce",
        "ali\u{200C}ce",
        "ali\u{200B}ce",
        "\u{FEFF}alice",
        "ali\u{00AD}ce",
        "alice\u{2060}",
        "ali\u{180E}ce",
        "ali\u{E000}ce",
        "alice\u{E0041}",
        "ali\u{0000}ce",
        "alice\u{0000}",
        "ali\u{0007}ce",
        "ali\nce",
        "alice\u{061C}",
    ];
    for name in invisible {
        let r = world.register_as(CAT, name).await;
        assert_eq!(r.status, 400, "registering {name:?}");
        let form = world
            .hit(
                &Req::new(CAT, "POST", "/v1/users", Cred::Anon)
                    .content_type(b"application/x-www-form-urlencoded")
                    .body(
                        serde_urlencoded::to_string([("username", name), ("password", PASSWORD)])
                            .unwrap(),
                    ),
            )
            .await;
        assert_eq!(form.status, 400, "registering {name:?} by form");
        let s = world.sign_in_as(CAT, name, PASSWORD).await;
        assert!(
            matches!(s.status, 400 | 401),
            "signing in as {name:?} answered {}",
            s.status
        );
        assert!(
            world.token_user(CAT, name, PASSWORD).await.is_err(),
            "password grant as {name:?}"
        );
    }

    // Confusables from other scripts are other accounts: allowed or refused,
    // never alice.
    for name in [
        "\u{0430}lice",
        "\u{0430}li\u{0441}e",
        "\u{0251}lice",
        "al\u{0456}ce",
        "\u{03B1}lice",
    ] {
        let r = world.register_as(CAT, name).await;
        match r.status {
            201 => {
                let id = r.json()["id"].as_str().unwrap().to_owned();
                assert_ne!(id, alice_id, "{name:?}");
                let s = world.sign_in_as(CAT, name, PASSWORD).await;
                assert_eq!(s.status, 200);
                assert_eq!(
                    s.json()["user"]["id"],
                    id.as_str(),
                    "{name:?} signs in as itself"
                );
                assert_eq!(s.json()["user"]["username"], name);
                assert_eq!(world.token_user(CAT, name, PASSWORD).await, Ok(id));
            }
            400 => {
                assert_eq!(
                    world.sign_in_as(CAT, name, PASSWORD).await.status,
                    401,
                    "{name:?}"
                );
            }
            other => panic!("registering {name:?} answered {other}"),
        }
    }

    // The width variant names alice's account (documented normalisation).
    let s = world.sign_in_as(CAT, "ａｌｉｃｅ", PASSWORD).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json()["user"]["id"], alice_id.as_str());
    // And alice is alice.
    let s = world.sign_in_as(CAT, "alice", PASSWORD).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json()["user"]["id"], alice_id.as_str());
    assert_eq!(s.json()["user"]["username"], "alice");
    world.assert_still_serving("Unicode tricks").await;
}
