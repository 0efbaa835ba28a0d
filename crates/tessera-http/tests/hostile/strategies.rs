//! Proptest strategies for random requests: odd methods, bent paths, random
//! queries, headers that mean something or nothing, and bodies from random
//! bytes to mutated credentials. The test user's credentials change when it
//! signs in again, so generated header values name them (`{session}`, …)
//! and [`World::fill_in`] puts in the current ones when a request is sent.

use std::fmt;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::Union;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::bodies::{FORM, JSON, every_field};
use crate::common::*;
use crate::nasty::{NASTY, TRICKY_CHARS};
use crate::raw::{raw_cred, raw_request};
use crate::world::*;

/// Headers the server reads, and some it does not.
const HEADERS: &[&str] = &[
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

/// Values that mean something to the server, by header. `{cookie}` is the
/// session cookie's name, `{session}` its value, `{csrf}` and `{access}`
/// the test user's CSRF and access tokens, `{base}` the server's origin,
/// `{admin}` the admin token and `{verifier-cut}` the introspection secret
/// less its last character.
fn meaningful(header: &str) -> &'static [&'static str] {
    match header {
        "accept" => &["text/event-stream", "application/json", "*/*;q=0"],
        "origin" => &["null", "http://evil.example", "{base}", "http://[::1"],
        "sec-fetch-site" => &["cross-site", "same-site", "same-origin", "none"],
        "last-event-id" => &["-1", "99999999999999999999", " 5 ", "0"],
        "x-csrf-token" => &["{csrf}", "{csrf}x", ""],
        "cookie" => &[
            "{cookie}={session}",
            "{cookie}=\"{session}\"",
            "{cookie}=ts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; {cookie}={session}",
            "=; ;;",
        ],
        "authorization" => &[
            "Bearer",
            "Bearer ",
            "Basic YWxpY2U6eA==",
            "bearer   {access}  ",
            "Bearer {access}x",
            "Bearer {admin} {admin}",
            "Bearer {verifier-cut}",
        ],
        "content-type" => &[
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=",
        ],
        "x-forwarded-for" => &["1.2.3.4", "::1, garbage"],
        _ => &[],
    }
}

/// A header value as generated.
#[derive(Debug, Clone)]
pub enum HeaderText {
    /// A [`meaningful`] value, its placeholders filled in when sent.
    Fill(&'static str),
    Bytes(Vec<u8>),
}

impl World {
    /// The bytes of `text` with the current credentials put in.
    pub fn fill_in(&self, text: &HeaderText) -> Vec<u8> {
        match text {
            HeaderText::Bytes(bytes) => bytes.clone(),
            HeaderText::Fill(template) => template
                .replace("{cookie}", &self.cookie_name)
                .replace("{session}", &self.cookie)
                .replace("{csrf}", &self.csrf)
                .replace("{access}", &self.access)
                .replace("{base}", &self.server.base)
                .replace("{admin}", ADMIN_TOKEN)
                .replace(
                    "{verifier-cut}",
                    &INTROSPECTION_SECRET[..INTROSPECTION_SECRET.len() - 1],
                )
                .into_bytes(),
        }
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> + Clone {
    vec(any::<u8>(), 0..=max)
}

fn pct_bytes(max: usize) -> impl Strategy<Value = String> + Clone {
    bytes(max).prop_map(|b| pct(&b))
}

fn without(bytes: Vec<u8>, banned: &[u8]) -> Vec<u8> {
    bytes.into_iter().filter(|b| !banned.contains(b)).collect()
}

/// Printable ASCII, characters that look like something they are not, and
/// any character at all.
fn text(max: usize) -> impl Strategy<Value = String> + Clone {
    let c = prop_oneof![
        2 => (b' '..=b'~').prop_map(char::from),
        1 => select(TRICKY_CHARS),
        1 => any::<char>(),
    ];
    vec(c, 0..=max).prop_map(String::from_iter)
}

/// A JSON value nested up to `depth` deep, keyed mostly by the API's fields.
fn json_value(depth: u32) -> BoxedStrategy<Value> {
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
    const WORDS: &[&str] = &["password", "refresh_token", "all", "others", "on"];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f.clamp(-1e300, 1e300))),
        prop_oneof![
            select(NASTY).prop_map(Value::from),
            select(WORDS).prop_map(Value::from),
            text(40).prop_map(Value::from),
        ],
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let key = prop_oneof![3 => select(FIELDS).prop_map(String::from), 1 => text(8)];
    prop_oneof![
        5 => leaf,
        1 => vec(json_value(depth - 1), 0..4).prop_map(Value::Array),
        1 => vec((key, json_value(depth - 1)), 0..6)
            .prop_map(|fields| Value::Object(fields.into_iter().collect())),
    ]
    .boxed()
}

/// A random JSON object (a username and password around a value that is
/// not one).
fn json_object() -> impl Strategy<Value = Vec<u8>> + Clone {
    (json_value(3), text(20)).prop_map(|(v, password)| {
        let object = if v.is_object() {
            v
        } else {
            json!({ "username": v, "password": password })
        };
        object.to_string().into_bytes()
    })
}

/// `data` after one to nine random edits: a byte set, inserted or removed,
/// or up to fifteen bytes repeated in place.
fn mutated(data: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edit = (0..4u8, any::<Index>(), any::<u8>(), 0..16usize);
    (data, vec(edit, 1..=9)).prop_map(|(mut data, edits)| {
        for (kind, at, byte, n) in edits {
            let len = data.len();
            let at = at.index(len + 1);
            match kind {
                0 if at < len => data[at] = byte,
                1 => data.insert(at, byte),
                2 if at < len => {
                    data.remove(at);
                }
                _ => {
                    let repeated = data[at..(at + n).min(len)].to_vec();
                    data.splice(at..at, repeated);
                }
            }
        }
        data
    })
}

/// The route's own method mostly; sometimes another, or made-up letters.
fn method(usual: &'static str) -> impl Strategy<Value = String> {
    const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    prop_oneof![
        8 => Just(usual.to_owned()),
        1 => select(METHODS).prop_map(String::from),
        1 => vec(b'A'..=b'Z', 1..=10).prop_map(|b| String::from_utf8(b).unwrap()),
    ]
}

/// One to three random `key=value` pairs, joined by `&` or `;`.
fn query() -> impl Strategy<Value = String> {
    const KEYS: &[&str] = &["limit", "before", "after", "since", "scope", "x", ""];
    const VALUES: &[&str] = &["%", "%Z", "%%", "%FF", "-1", "0", "501", "all", "others"];
    let value = prop_oneof![
        pct_bytes(20),
        text(10).prop_map(|t| pct(t.as_bytes())),
        select(VALUES).prop_map(String::from),
        any::<i64>().prop_map(|n| n.to_string()),
        (0..1000u32).prop_map(|n| n.to_string()),
    ];
    let pairs = vec(
        (select(KEYS), value).prop_map(|(k, v)| format!("{k}={v}")),
        1..=3,
    );
    (pairs, prop::bool::weighted(0.2))
        .prop_map(|(pairs, semicolons)| pairs.join(if semicolons { ";" } else { "&" }))
}

/// A target for `template`: its `{id}` real (`real_id`), nasty or random;
/// the path sometimes bent; a random query half the time.
fn target(template: &'static str, real_id: String) -> impl Strategy<Value = String> {
    const SUFFIXES: &[&str] = &["/", "//", "/.", "/..", "%2F", ";x", "%00", "%"];
    let id = prop_oneof![
        Just(real_id),
        select(NASTY).prop_map(|s| pct(s.as_bytes())),
        pct_bytes(40),
        text(20).prop_map(|t| pct(t.as_bytes())),
    ];
    let path = id.prop_map(move |id| template.replace("{id}", &id));
    let bent = prop_oneof![
        6 => path.clone(),
        1 => (path.clone(), pct_bytes(30)).prop_map(|(p, junk)| format!("{p}/{junk}")),
        1 => pct_bytes(60).prop_map(|junk| format!("/{junk}")),
        1 => (path.clone(), select(SUFFIXES)).prop_map(|(p, s)| format!("{p}{s}")),
        1 => (path, pct_bytes(4))
            .prop_map(|(p, junk)| p.replacen("/v1", &format!("/{junk}"), 1)),
    ];
    (bent, proptest::option::of(query())).prop_map(|(path, query)| match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    })
}

/// A meaningful value for `header` half the time (if it has any), else any
/// bytes a header value may hold: visible ASCII, tab, obs-text.
fn header_value(header: &str) -> BoxedStrategy<HeaderText> {
    let byte = prop_oneof![1 => Just(b'\t'), 95 => 0x20u8..0x7F, 128 => 0x80u8..=0xFF];
    let random = vec(byte, 0..120).prop_map(HeaderText::Bytes);
    match meaningful(header) {
        [] => random.boxed(),
        values => prop_oneof![select(values).prop_map(HeaderText::Fill), random].boxed(),
    }
}

fn known_header() -> impl Strategy<Value = Vec<u8>> {
    select(HEADERS).prop_map(|h| h.as_bytes().to_vec())
}

/// A header named by `name` and a [`header_value`] for it; when `wild`,
/// half the values are bytes (NUL, DEL, …) no client would send.
fn header(
    name: impl Strategy<Value = Vec<u8>>,
    wild: bool,
) -> impl Strategy<Value = (Vec<u8>, HeaderText)> {
    name.prop_flat_map(move |name| {
        let value = header_value(&String::from_utf8_lossy(&name));
        let value = if wild {
            let odd = bytes(60).prop_map(|b| HeaderText::Bytes(without(b, b"\r\n")));
            prop_oneof![odd, value].boxed()
        } else {
            value
        };
        (Just(name), value)
    })
}

/// A body and its content type: none; random bytes; the user's credentials
/// mutated, as JSON or a form; random JSON; every field one nasty string;
/// a random object mutated.
fn body(user: &str) -> impl Strategy<Value = (Option<&'static [u8]>, Vec<u8>)> + use<> {
    let creds_json =
        json!({ "username": user, "password": PASSWORD, "grant_type": "password" }).to_string();
    let creds_form = serde_urlencoded::to_string([
        ("username", user),
        ("password", PASSWORD),
        ("grant_type", "password"),
    ])
    .unwrap();
    let json_or_form = select(vec![JSON, FORM]);
    prop_oneof![
        Just((None, Vec::new())),
        (
            select(vec![JSON, FORM, None, Some(&b"text/plain"[..])]),
            bytes(2048)
        ),
        mutated(Just(creds_json.into_bytes())).prop_map(|b| (JSON, b)),
        mutated(Just(creds_form.into_bytes())).prop_map(|b| (FORM, b)),
        json_value(4).prop_map(|v| (JSON, v.to_string().into_bytes())),
        (json_or_form.clone(), select(NASTY)).prop_map(|(ct, s)| {
            let body = every_field(&json!(s), "password");
            (ct, body.to_string().into_bytes())
        }),
        (json_or_form, mutated(json_object())),
    ]
}

/// A random request, sent through the HTTP client or written raw.
#[derive(Clone)]
pub struct Fuzzed {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    cred: Cred,
    headers: Vec<(Vec<u8>, HeaderText)>,
    content_type: Option<&'static [u8]>,
    body: Option<Vec<u8>>,
}

/// As the request reads, bytes escaped: the runner reports the smallest
/// failing request this way.
impl fmt::Debug for Fuzzed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (method, target) = (clip(&self.method, 100), clip(&self.target, 4096));
        write!(f, "{method} {target} as {:?}", self.cred)?;
        for (name, value) in &self.headers {
            let value = match value {
                HeaderText::Fill(template) => (*template).to_owned(),
                HeaderText::Bytes(bytes) => clip(bytes, 4096),
            };
            write!(f, "; {}: {value}", clip(name, 100))?;
        }
        if let Some(ct) = self.content_type {
            write!(f, "; content-type {}", clip(ct, 100))?;
        }
        if let Some(body) = &self.body {
            write!(f, "; body ({} bytes) {}", body.len(), clip(body, 4096))?;
        }
        Ok(())
    }
}

impl Fuzzed {
    /// The request for the HTTP client, with the current credentials;
    /// headers it cannot send are left out, and so is Authorization when
    /// `cred` sets it.
    pub fn to_req(&self, world: &World) -> Req {
        let method = String::from_utf8_lossy(&self.method);
        let target = String::from_utf8_lossy(&self.target);
        let mut req = Req::new("seeded fuzz (HTTP)", &method, target, self.cred);
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name),
                HeaderValue::from_bytes(&world.fill_in(value)),
            ) && (name != AUTHORIZATION || self.cred == Cred::Anon)
            {
                req.headers.push((name, value));
            }
        }
        if let Some(ct) = self.content_type {
            req = req.content_type(ct);
        }
        if let Some(body) = &self.body {
            req = req.body(body.clone());
        }
        req
    }

    /// The request's bytes, with the current credentials.
    pub fn to_bytes(&self, world: &World) -> Vec<u8> {
        let mut headers = raw_cred(world, self.cred);
        for (name, value) in &self.headers {
            headers.push((name.clone(), world.fill_in(value)));
        }
        if let Some(ct) = self.content_type {
            headers.push((b"Content-Type".to_vec(), ct.to_vec()));
        }
        let body = self.body.as_deref().unwrap_or_default();
        raw_request(world, &self.method, &self.target, &headers, body)
    }
}

/// Any route with any credential, bent as above; up to four headers.
pub fn http_request(world: &World) -> impl Strategy<Value = Fuzzed> + use<> {
    let routes = Union::new(
        ENDPOINTS
            .iter()
            .map(|&(m, t)| (method(m), target(t, world.real_id(t))).boxed()),
    );
    let made_up = vec(
        select(&b"abcdefghijklmnopqrstuvwxyz-0123456789"[..]),
        1..=12,
    );
    let name = prop_oneof![5 => known_header(), 1 => made_up];
    (
        routes,
        select(CREDS.to_vec()),
        vec(header(name, false), 0..5),
        body(&world.user),
        any::<bool>(),
    )
        .prop_map(
            |((method, target), cred, headers, (content_type, body), send_empty)| Fuzzed {
                method: method.into_bytes(),
                target: target.into_bytes(),
                cred,
                headers,
                content_type,
                body: (!body.is_empty() || send_empty).then_some(body),
            },
        )
}

/// A third of the requests break HTTP framing itself ("wild": bytes no
/// client sends in methods, targets and headers); the rest are well
/// framed, so that hostile content reaches the router.
pub fn raw_request_strategy(world: &World) -> impl Strategy<Value = Fuzzed> + use<> {
    let routes: Vec<(&str, String)> = ENDPOINTS
        .iter()
        .map(|&(m, t)| (m, fill(world, t)))
        .collect();
    (prop::bool::weighted(1.0 / 3.0), select(routes)).prop_flat_map(|(wild, (method, path))| {
        let name = if wild {
            let odd = bytes(12).prop_map(|b| without(b, b"\r\n"));
            prop_oneof![2 => known_header(), 1 => odd].boxed()
        } else {
            known_header().boxed()
        };
        let content_type = select(vec![
            &b"application/json"[..],
            b"application/x-www-form-urlencoded",
            b"text/plain",
        ]);
        (
            raw_method(wild, method),
            raw_target(wild, path.into_bytes()),
            select(CREDS.to_vec()),
            vec(header(name, wild), 0..6),
            prop::bool::weighted(0.2),
            prop_oneof![Just(Vec::new()), bytes(1024), json_object()],
            proptest::option::of(content_type),
        )
            .prop_map(
                move |(method, target, cred, mut headers, folded, body, content_type)| {
                    if wild && folded {
                        // An obsolete folded header line.
                        headers
                            .push((b"X-Folded".to_vec(), HeaderText::Bytes(b"a\r\n b".to_vec())));
                    }
                    Fuzzed {
                        method,
                        target,
                        cred,
                        headers,
                        content_type,
                        body: Some(body),
                    }
                },
            )
    })
}

fn raw_method(wild: bool, usual: &'static str) -> impl Strategy<Value = Vec<u8>> {
    const METHODS: &[&str] = &["PUT", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT"];
    let usual = usual.as_bytes().to_vec();
    let odd = if wild {
        bytes(8).prop_map(|b| without(b, b" \r\n")).boxed()
    } else {
        Just(usual.clone()).boxed()
    };
    prop_oneof![
        1 => odd,
        1 => Just(b"get".to_vec()),
        1 => select(METHODS).prop_map(|m| m.as_bytes().to_vec()),
        5 => Just(usual),
    ]
}

/// `path` with junk inserted somewhere, or a junk query, or
/// percent-encoded junk appended, or (when wild) a space or bare CR
/// inside, or as it is. Junk is anything but the request line's delimiters
/// when wild, else only bytes a target may hold as they are.
fn raw_target(wild: bool, path: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let junk = move |max| {
        bytes(max).prop_map(move |b| match wild {
            true => without(b, b" \r\n"),
            false => b
                .into_iter()
                .filter(|b| b.is_ascii_graphic() && *b != b'#')
                .collect(),
        })
    };
    let delimiter = select(&b" \r\t\x0b\x0c"[..]).prop_map(move |d| match wild {
        true => vec![d],
        false => Vec::new(),
    });
    // What to insert, and what to append.
    let edit = prop_oneof![
        junk(24).prop_map(|j| (j, Vec::new())),
        junk(40).prop_map(|q| (Vec::new(), [&b"?"[..], &q].concat())),
        pct_bytes(20).prop_map(|p| (Vec::new(), p.into_bytes())),
        delimiter.prop_map(|d| (d, Vec::new())),
        Just((Vec::new(), Vec::new())),
    ];
    (any::<Index>(), edit).prop_map(move |(at, (inserted, appended))| {
        let mut target = path.clone();
        let at = at.index(target.len() + 1);
        target.splice(at..at, inserted);
        target.extend(appended);
        target
    })
}
