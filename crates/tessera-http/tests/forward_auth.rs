//! `GET /v1/auth/forward` over real HTTP, as a reverse proxy calls it:
//! identity headers for a live session (cookie or bearer), `?role=`, 401,
//! the sign-in redirect for browsers behind a trusted proxy on an allowed
//! host, and hostile forwarding headers (which never yield a redirect).
//! Then `/login` sending the browser back to an allowed host.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use reqwest::header::{HeaderValue, LOCATION};
use tessera_core::client::ClientInfo;
use zeroize::Zeroizing;

const FORWARD: &str = "/v1/auth/forward";
/// What a browser sends when navigating.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A server behind a proxy on loopback that may send browsers back to
/// `app.test`.
async fn behind_proxy() -> TestServer {
    TestServer::with(Options {
        core: cheap_hashing(),
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        forward_auth_hosts: vec!["app.test".to_owned()],
        ..Options::default()
    })
    .await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The proxy's subrequest: the browser's request headers plus `extra`.
async fn forward(
    server: &TestServer,
    query: &str,
    extra: &[(&str, HeaderValue)],
) -> reqwest::Response {
    let mut request = no_redirects().get(server.url(&format!("{FORWARD}{query}")));
    for (name, value) in extra {
        request = request.header(*name, value.clone());
    }
    request.send().await.unwrap()
}

fn v(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap()
}

fn cookie(server: &TestServer, client: &CookieClient) -> (&'static str, HeaderValue) {
    let name = server.state.http().cookie.effective_name();
    ("cookie", v(&format!("{name}={}", client.cookie)))
}

/// Everything a browser-facing proxy forwards about `https://app.test/x?y=1`.
fn forwarded_browser() -> Vec<(&'static str, HeaderValue)> {
    vec![
        ("accept", v(BROWSER_ACCEPT)),
        ("x-forwarded-proto", v("https")),
        ("x-forwarded-host", v("app.test")),
        ("x-forwarded-uri", v("/x?y=1")),
    ]
}

async fn assert_bare(r: reqwest::Response, status: u16) -> reqwest::header::HeaderMap {
    assert_eq!(r.status(), status);
    let headers = r.headers().clone();
    assert!(headers.get("content-type").is_none(), "{headers:?}");
    assert!(r.bytes().await.unwrap().is_empty(), "a body");
    headers
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers[name].to_str().unwrap()
}

#[tokio::test]
async fn a_cookie_session_gets_the_identity_headers_until_it_ends() {
    let server = behind_proxy().await;
    let alice = server.signed_in("alice").await;
    let me: serde_json::Value = alice.get("/v1/me").await.json().await.unwrap();

    let r = forward(&server, "", &[cookie(&server, &alice)]).await;
    let headers = assert_bare(r, 200).await;
    assert_eq!(header(&headers, "x-tessera-user-id"), me["id"]);
    assert_eq!(header(&headers, "x-tessera-username"), "alice");
    assert_eq!(header(&headers, "x-tessera-roles"), "", "present and empty");
    assert_eq!(header(&headers, "x-tessera-session-id"), alice.session_id);
    assert_eq!(header(&headers, "cache-control"), "no-store");

    // A GET from anywhere needs no CSRF token, whatever the browser says.
    let mut hostile = forwarded_browser();
    hostile.push(cookie(&server, &alice));
    hostile.push(("origin", v("https://evil.example")));
    hostile.push(("sec-fetch-site", v("cross-site")));
    let r = forward(&server, "", &hostile).await;
    assert_eq!(r.status(), 200, "signed in: no redirect either");

    // Signed out: refused on the very next request.
    assert_eq!(alice.delete("/v1/session").await.status(), 204);
    let r = forward(&server, "", &[cookie(&server, &alice)]).await;
    assert_bare(r, 401).await;
}

#[tokio::test]
async fn a_bearer_token_works_and_a_revoked_one_does_not() {
    let server = behind_proxy().await;
    server.register("bob").await;
    let tokens = server.tokens("bob").await;
    let bearer = ("authorization", v(&format!("Bearer {}", tokens.access)));
    let r = forward(&server, "", std::slice::from_ref(&bearer)).await;
    let headers = assert_bare(r, 200).await;
    assert_eq!(header(&headers, "x-tessera-username"), "bob");
    assert_eq!(header(&headers, "x-tessera-session-id"), tokens.session_id);

    let r = server
        .anon()
        .post(server.url("/v1/token/revoke"))
        .form(&[("token", tokens.refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = forward(&server, "", &[bearer]).await;
    assert_bare(r, 401).await;
    let r = forward(&server, "", &[("authorization", v("Bearer nonsense"))]).await;
    assert_bare(r, 401).await;
    // An Authorization header never falls back to a cookie.
    let r = forward(&server, "", &[("authorization", v("Basic YTpi"))]).await;
    assert_bare(r, 401).await;
}

#[tokio::test]
async fn roles_are_listed_and_required_on_request() {
    let server = behind_proxy().await;
    server
        .state
        .core()
        .accounts
        .create_user(
            "boss",
            Zeroizing::new(PASSWORD.to_owned()),
            vec!["admin".to_owned(), "ops team".to_owned()],
            &ClientInfo::new(None, None),
        )
        .await
        .unwrap();
    let boss = server.sign_in("boss").await;
    let carol = server.signed_in("carol").await;

    let r = forward(&server, "?role=admin", &[cookie(&server, &boss)]).await;
    let headers = assert_bare(r, 200).await;
    assert_eq!(header(&headers, "x-tessera-roles"), "admin,ops team");
    for query in [
        "?role=ops%20team",
        "?role=admin&role=ops%20team",
        "?other=x&role=admin",
    ] {
        let r = forward(&server, query, &[cookie(&server, &boss)]).await;
        assert_eq!(r.status(), 200, "{query}");
    }
    for query in [
        "?role=root",
        "?role=admin&role=root",
        "?role=",
        "?role=ADMIN",
        "?role=%ZZ",
    ] {
        let r = forward(&server, query, &[cookie(&server, &boss)]).await;
        assert_bare(r, 403).await;
    }
    let r = forward(&server, "?role=admin", &[cookie(&server, &carol)]).await;
    assert_bare(r, 403).await;
    let r = forward(&server, "", &[cookie(&server, &carol)]).await;
    assert_eq!(r.status(), 200);
    // Not signed in: 401 before any role is looked at.
    let r = forward(&server, "?role=admin", &[]).await;
    assert_bare(r, 401).await;
}

#[tokio::test]
async fn browsers_behind_a_trusted_proxy_are_sent_to_sign_in() {
    let server = behind_proxy().await;
    let r = forward(&server, "", &forwarded_browser()).await;
    let headers = assert_bare(r, 302).await;
    assert_eq!(
        header(&headers, "location"),
        format!(
            "{}/login?return_to=https%3A//app.test/x%3Fy%3D1",
            server.base
        )
    );
    // The answer may reach the browser as app.test's: no HSTS for it.
    assert!(headers.get("strict-transport-security").is_none());

    // nginx's convention: the whole URL in one header.
    let r = forward(
        &server,
        "",
        &[
            ("accept", v("text/html")),
            ("x-original-url", v("http://app.test:8080/wiki?a=1&b=2")),
        ],
    )
    .await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()[LOCATION],
        format!(
            "{}/login?return_to=http%3A//app.test%3A8080/wiki%3Fa%3D1%26b%3D2",
            server.base
        )
    );
    // Host names are compared as DNS does: without regard to case.
    let mut upper = forwarded_browser();
    upper[2] = ("x-forwarded-host", v("APP.test"));
    assert_eq!(forward(&server, "", &upper).await.status(), 302);
}

#[tokio::test]
async fn hsts_is_not_set_for_the_proxied_hosts() {
    let server = TestServer::with(Options {
        hsts: true,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        forward_auth_hosts: vec!["app.test".to_owned()],
        ..Options::default()
    })
    .await;
    for r in [
        forward(&server, "", &[]).await,
        forward(&server, "", &forwarded_browser()).await,
    ] {
        assert!(r.status() == 401 || r.status() == 302);
        assert!(r.headers().get("strict-transport-security").is_none());
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    let r = server
        .anon()
        .get(server.url("/v1/me"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("strict-transport-security").is_some());
}

#[tokio::test]
async fn no_redirect_unless_every_condition_holds() {
    let server = behind_proxy().await;
    let with = |changes: &[(&'static str, Option<HeaderValue>)]| {
        let mut headers = forwarded_browser();
        for (name, value) in changes {
            headers.retain(|(n, _)| n != name);
            if let Some(value) = value {
                headers.push((*name, value.clone()));
            }
        }
        headers
    };
    let huge = format!("/{}", "a".repeat(16 * 1024));
    let cases: Vec<(&str, Vec<(&'static str, HeaderValue)>)> = vec![
        ("no Accept", with(&[("accept", None)])),
        ("*/* alone", with(&[("accept", Some(v("*/*")))])),
        ("JSON", with(&[("accept", Some(v("application/json")))])),
        (
            "html at q=0",
            with(&[("accept", Some(v("text/html;q=0, */*")))]),
        ),
        (
            "host not listed",
            with(&[("x-forwarded-host", Some(v("evil.test")))]),
        ),
        (
            "listed host as a suffix",
            with(&[("x-forwarded-host", Some(v("app.test.evil.test")))]),
        ),
        (
            "user info",
            with(&[("x-forwarded-host", Some(v("evil.test@app.test")))]),
        ),
        (
            "user info the other way",
            with(&[("x-forwarded-host", Some(v("app.test@evil.test")))]),
        ),
        (
            "trailing dot",
            with(&[("x-forwarded-host", Some(v("app.test.")))]),
        ),
        (
            "a list of hosts",
            with(&[("x-forwarded-host", Some(v("app.test, evil.test")))]),
        ),
        (
            "escaped host",
            with(&[("x-forwarded-host", Some(v("app%2etest")))]),
        ),
        (
            "backslash",
            with(&[("x-forwarded-host", Some(v("evil.test\\@app.test")))]),
        ),
        ("no host", with(&[("x-forwarded-host", None)])),
        ("no scheme", with(&[("x-forwarded-proto", None)])),
        (
            "another scheme",
            with(&[("x-forwarded-proto", Some(v("javascript")))]),
        ),
        (
            "a URI that is no path",
            with(&[("x-forwarded-uri", Some(v("@evil.test/")))]),
        ),
        (
            "white space in the URI",
            with(&[("x-forwarded-uri", Some(v("/a b")))]),
        ),
        ("a huge URI", with(&[("x-forwarded-uri", Some(v(&huge)))])),
        (
            "non-UTF-8 host",
            with(&[(
                "x-forwarded-host",
                Some(HeaderValue::from_bytes(b"app.test\xff").unwrap()),
            )]),
        ),
        (
            "non-ASCII URI",
            with(&[(
                "x-forwarded-uri",
                Some(HeaderValue::from_bytes("/caf\u{e9}".as_bytes()).unwrap()),
            )]),
        ),
        (
            "an absolute URL on another host",
            with(&[
                ("x-forwarded-proto", None),
                ("x-forwarded-host", None),
                ("x-forwarded-uri", None),
                ("x-original-url", Some(v("https://app.test@evil.test/"))),
            ]),
        ),
        (
            "a path-only X-Original-URL without a host",
            with(&[
                ("x-forwarded-host", None),
                ("x-original-url", Some(v("/x"))),
            ]),
        ),
    ];
    for (what, headers) in cases {
        let r = forward(&server, "", &headers).await;
        assert_eq!(r.status(), 401, "{what}");
        assert_bare(r, 401).await;
    }

    // Duplicated forwarding headers: two opinions on the original request.
    for name in ["x-forwarded-host", "x-forwarded-proto", "x-forwarded-uri"] {
        let mut request = no_redirects().get(server.url(FORWARD));
        for (n, value) in forwarded_browser() {
            request = request.header(n, value);
        }
        let r = request.header(name, "app.test").send().await.unwrap();
        assert_eq!(r.status(), 401, "{name} twice");
    }
    let r = no_redirects()
        .get(server.url(FORWARD))
        .header("accept", "text/html")
        .header("x-original-url", "https://app.test/")
        .header("x-original-url", "https://evil.test/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // The same hosts, but the peer (this test, on loopback) is no proxy.
    let server = TestServer::with(Options {
        forward_auth_hosts: vec!["app.test".to_owned()],
        ..Options::default()
    })
    .await;
    let r = forward(&server, "", &forwarded_browser()).await;
    assert_bare(r, 401).await;
    // And without allowed hosts, a trusted proxy gets no redirect either.
    let server = TestServer::with(Options {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Options::default()
    })
    .await;
    let r = forward(&server, "", &forwarded_browser()).await;
    assert_bare(r, 401).await;
}

#[tokio::test]
async fn the_proxy_must_ask_under_one_of_our_names() {
    // A proxy that passes the application's Host on is refused like a
    // rebinding attack: it must send Tessera's own name (or one in `hosts`).
    let server = behind_proxy().await;
    let alice = server.signed_in("alice").await;
    let r = forward(
        &server,
        "",
        &[("host", v("app.test")), cookie(&server, &alice)],
    )
    .await;
    problem(r, 421).await;
    let r = forward(
        &server,
        "",
        &[("host", v("localhost")), cookie(&server, &alice)],
    )
    .await;
    assert_eq!(
        r.status(),
        200,
        "a loopback public_url answers to localhost"
    );
}

/// A fresh browser that fetches the sign-in form at `form_path` and posts
/// it with `return_to`: the answer, and the browser.
async fn sign_in_through_the_form(
    server: &TestServer,
    username: &str,
    form_path: &str,
    return_to: &str,
) -> (reqwest::Response, reqwest::Client) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser.get(server.url(form_path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let form = r.text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = form.find(marker).unwrap() + marker.len();
    let token = form[start..].split('"').next().unwrap().to_owned();
    let r = browser
        .post(server.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", username),
            ("password", PASSWORD),
            ("return_to", return_to),
        ])
        .send()
        .await
        .unwrap();
    (r, browser)
}

#[tokio::test]
async fn sign_in_sends_the_browser_back_to_an_allowed_host() {
    let server = behind_proxy().await;
    server.register("dave").await;
    let back = "https://app.test/x?y=1";
    // Where the forward-auth redirect leads: the form keeps return_to.
    let form = reqwest::get(server.url("/login?return_to=https%3A//app.test/x%3Fy%3D1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("app.test"), "return_to dropped: {form}");
    for (return_to, expected) in [
        ("https://evil.test/", "/account"),
        ("https://app.test@evil.test/", "/account"),
        ("https://app.test.evil.test/", "/account"),
        ("https://evil.test\\@app.test/", "/account"),
        ("//app.test/", "/account"),
        (back, back),
        ("http://APP.test:8080/", "http://APP.test:8080/"),
    ] {
        let (r, browser) = sign_in_through_the_form(&server, "dave", "/login", return_to).await;
        assert_eq!(r.status(), 303, "{return_to}");
        assert_eq!(r.headers()[LOCATION], expected, "{return_to}");
        // Already signed in: /login sends the browser straight on.
        let r = browser
            .get(server.url("/login"))
            .query(&[("return_to", return_to)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()[LOCATION], expected, "{return_to}");
    }
    // Without the list, only paths are taken.
    let plain = TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await;
    plain.register("erin").await;
    let (r, _) = sign_in_through_the_form(&plain, "erin", "/login", back).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/account");
}
