//! The web pages over real HTTP, as a browser without JavaScript sends
//! them: forms, login CSRF and the session's CSRF token, `return_to`, the
//! headers, and hostile form input (always a 4xx page, never a 500).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN};
use tessera_http::pages::layout::PAGE_CSP;
use tessera_http::pages::ui::{Accent, UiConfig};

/// A browser: a cookie jar, no automatic redirects (the tests look at them).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
        .build()
        .unwrap()
}

/// The value of the hidden (or any) input named `name`.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// Asserts an HTML page with `status`, returning its text.
async fn html(r: reqwest::Response, status: u16) -> String {
    let got = r.status();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8", "{body}");
    assert_eq!(headers["content-security-policy"], PAGE_CSP);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert!(!body.contains("<script"), "{body}");
    assert!(!body.contains(" style="), "{body}");
    body
}

async fn get(b: &reqwest::Client, server: &TestServer, path: &str) -> reqwest::Response {
    b.get(server.url(path)).send().await.unwrap()
}

async fn post(
    b: &reqwest::Client,
    server: &TestServer,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    b.post(server.url(path)).form(fields).send().await.unwrap()
}

/// Fetches the sign-in form and posts it.
async fn sign_in_with(
    b: &reqwest::Client,
    server: &TestServer,
    username: &str,
    password: &str,
    return_to: Option<&str>,
) -> reqwest::Response {
    let form = html(get(b, server, "/login").await, 200).await;
    let token = field(&form, "csrf_token");
    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("username", username),
        ("password", password),
    ];
    if let Some(r) = return_to {
        fields.push(("return_to", r));
    }
    post(b, server, "/login", &fields).await
}

/// A browser signed in through the page as `username` (registered first).
async fn signed_in_browser(server: &TestServer, username: &str) -> reqwest::Client {
    server.register(username).await;
    let b = browser();
    let r = sign_in_with(&b, server, username, PASSWORD, None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    b
}

/// The account page's CSRF token.
async fn account_token(b: &reqwest::Client, server: &TestServer) -> String {
    field(
        &html(get(b, server, "/account").await, 200).await,
        "csrf_token",
    )
}

async fn cheap_server() -> TestServer {
    TestServer::with(Options {
        core: cheap_hashing(),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn pages_have_a_strict_policy_and_the_stylesheet_is_cached_forever() {
    let server = cheap_server().await;
    let b = browser();
    let r = get(&b, &server, "/login").await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    // Not no-referrer: browsers would then send `Origin: null` with the
    // pages' own form posts.
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    let page = html(r, 200).await;
    assert!(page.contains("autocomplete=\"username\""));
    assert!(page.contains("autocomplete=\"current-password\""));
    assert!(page.contains("<label for=\"username\">"));
    assert!(page.contains("<label for=\"password\">"));
    let stylesheet = page
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(stylesheet.starts_with("/assets/style."), "{stylesheet}");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );

    let r = get(&b, &server, &stylesheet).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let css = r.text().await.unwrap();
    assert!(css.contains(&Accent::DEFAULT.css()), "the accent is in it");
    assert!(css.contains("prefers-color-scheme: dark"));

    let icon = page
        .split("rel=\"icon\" type=\"image/svg+xml\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = get(&b, &server, &icon).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_TYPE], "image/svg+xml");

    for stale in ["/assets/style.0123456789abcdef.css", "/assets/style.css"] {
        assert_eq!(get(&b, &server, stale).await.status(), 404, "{stale}");
    }
}

#[tokio::test]
async fn the_product_name_and_accent_are_configurable_and_escaped() {
    let server = TestServer::with(Options {
        core: cheap_hashing(),
        ui: Some(UiConfig {
            title: "Acme <ID> & Co".into(),
            accent: Accent::parse("#c0ffee").unwrap(),
        }),
        ..Options::default()
    })
    .await;
    let page = html(get(&browser(), &server, "/login").await, 200).await;
    assert!(
        page.contains("Acme &#60;ID&#62; &#38; Co") || page.contains("Acme &lt;ID&gt; &amp; Co"),
        "{page}"
    );
    assert!(!page.contains("<ID>"));
    let stylesheet = page
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let css = get(&browser(), &server, stylesheet)
        .await
        .text()
        .await
        .unwrap();
    assert!(css.contains("--accent: #c0ffee;"), "{css}");
    // Light accent: dark text on it.
    assert!(css.contains("--on-accent: #111111;"), "{css}");
}

#[tokio::test]
async fn register_sign_out_and_sign_in_again() {
    let server = cheap_server().await;
    let b = browser();
    let r = get(&b, &server, "/register").await;
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("tessera-login="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let form = html(r, 200).await;
    assert!(form.contains("autocomplete=\"new-password\""));
    let r = post(
        &b,
        &server,
        "/register",
        &[
            ("csrf_token", &field(&form, "csrf_token")),
            ("username", "Alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), "/account");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("tessera=ts_")),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("tessera-login=;")),
        "{cookies:?}"
    );

    let account = html(get(&b, &server, "/account").await, 200).await;
    assert!(account.contains("Alice"));
    assert!(account.contains("This device"));
    assert!(account.contains("Firefox on Linux"));
    assert!(account.contains("127.0.0.1"));

    // The same session through the API.
    let me = get(&b, &server, "/v1/me").await;
    assert_eq!(me.status(), 200);

    // Signing out: a confirmation first, then the post.
    let confirm = html(get(&b, &server, "/logout").await, 200).await;
    let r = post(
        &b,
        &server,
        "/logout",
        &[("csrf_token", &field(&confirm, "csrf_token"))],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?notice=signed-out");
    let r = get(&b, &server, "/account").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?return_to=/account");
    let r = get(&b, &server, "/logout").await;
    assert_eq!(location(&r), "/login?return_to=/account");
    assert!(
        html(get(&b, &server, "/login?notice=signed-out").await, 200)
            .await
            .contains("You are signed out.")
    );
    assert_eq!(get(&b, &server, "/v1/me").await.status(), 401);

    let r = sign_in_with(&b, &server, "alice", PASSWORD, None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    // Signed in, the forms send the browser straight on.
    assert_eq!(location(&get(&b, &server, "/login").await), "/account");
    assert_eq!(location(&get(&b, &server, "/register").await), "/account");
}

#[tokio::test]
async fn registration_refusals_are_shown_with_their_reasons() {
    let server = cheap_server().await;
    server.register("taken").await;
    let b = browser();
    let token = field(
        &html(get(&b, &server, "/register").await, 200).await,
        "csrf_token",
    );
    let cases: &[(&str, &str, u16, &str)] = &[
        ("bob", "short", 400, "at least 8 characters"),
        ("bob", "password", 400, "too common"),
        ("bobbybobby", "BobbyBobby", 400, "must not be the username"),
        ("taken", PASSWORD, 409, "This username is taken"),
        ("", PASSWORD, 400, "This username cannot be used"),
    ];
    for (username, password, status, message) in cases {
        let r = post(
            &b,
            &server,
            "/register",
            &[
                ("csrf_token", &token),
                ("username", username),
                ("password", password),
            ],
        )
        .await;
        let page = html(r, *status).await;
        assert!(page.contains(message), "{username}/{password}: {page}");
        assert!(page.contains("role=\"alert\""));
        assert!(
            !page.contains(&format!("value=\"{password}\"")),
            "the password is not echoed"
        );
    }
}

#[tokio::test]
async fn wrong_credentials_get_one_message_and_the_username_is_escaped() {
    let server = cheap_server().await;
    server.register("alice").await;
    let b = browser();
    let mut pages = Vec::new();
    for (username, password) in [
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        ("<script>alert(1)</script>", PASSWORD),
    ] {
        let r = sign_in_with(&b, &server, username, password, None).await;
        let page = html(r, 403).await;
        assert!(
            page.contains("The username or password is wrong."),
            "{page}"
        );
        assert!(
            !page.contains("wrong password"),
            "the password is not echoed"
        );
        pages.push(page);
    }
    assert!(pages[2].contains("&#60;script&#62;") || pages[2].contains("&lt;script&gt;"));
}

#[tokio::test]
async fn throttled_sign_ins_say_how_long_to_wait() {
    let mut core = cheap_hashing();
    core.rate_limit.login_attempts = 2;
    let server = TestServer::with(Options {
        core,
        ..Options::default()
    })
    .await;
    server.register("alice").await;
    let b = browser();
    for _ in 0..2 {
        let r = sign_in_with(&b, &server, "alice", "wrong password", None).await;
        assert_eq!(r.status(), 403);
    }
    let r = sign_in_with(&b, &server, "alice", PASSWORD, None).await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let page = html(r, 429).await;
    assert!(
        page.contains(&format!("Try again in {retry_after} s.")),
        "{page}"
    );
}

#[tokio::test]
async fn login_csrf_needs_the_cookie_and_its_token() {
    let server = cheap_server().await;
    server.register("alice").await;
    let fields = |token: &str| {
        vec![
            ("csrf_token".to_owned(), token.to_owned()),
            ("username".to_owned(), "alice".to_owned()),
            ("password".to_owned(), PASSWORD.to_owned()),
        ]
    };

    // No cookie at all (a foreign page posting the form).
    let r = server
        .anon()
        .post(server.url("/login"))
        .form(&fields("x"))
        .send()
        .await
        .unwrap();
    let page = html(r, 403).await;
    assert!(page.contains("This form has expired"), "{page}");
    assert!(page.contains("href=\"/login\""), "{page}");

    // A cookie, and the token of another browser's cookie.
    let b = browser();
    let mine = field(
        &html(get(&b, &server, "/login").await, 200).await,
        "csrf_token",
    );
    let theirs = field(
        &html(get(&browser(), &server, "/login").await, 200).await,
        "csrf_token",
    );
    for token in [theirs.as_str(), "", "0000"] {
        let r = b
            .post(server.url("/login"))
            .form(&fields(token))
            .send()
            .await
            .unwrap();
        html(r, 403).await;
    }
    let r = b
        .post(server.url("/login"))
        .form(&fields(&mine[..]).into_iter().skip(1).collect::<Vec<_>>())
        .send()
        .await
        .unwrap();
    html(r, 403).await;

    // The right pair, but from a foreign origin.
    let r = b
        .post(server.url("/login"))
        .header(ORIGIN, "https://evil.example")
        .form(&fields(&mine))
        .send()
        .await
        .unwrap();
    html(r, 403).await;
    let r = b
        .post(server.url("/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&fields(&mine))
        .send()
        .await
        .unwrap();
    html(r, 403).await;

    // Nothing of the above signed anyone in; the right pair does.
    assert_eq!(get(&b, &server, "/v1/me").await.status(), 401);
    let r = b
        .post(server.url("/login"))
        .header(ORIGIN, &server.base)
        .form(&fields(&mine))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get(&b, &server, "/v1/me").await.status(), 200);

    // Registration is protected the same way.
    let r = server
        .anon()
        .post(server.url("/register"))
        .form(&[
            ("csrf_token", "x"),
            ("username", "mallory"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    html(r, 403).await;
}

#[tokio::test]
async fn signed_in_forms_need_the_sessions_csrf_token() {
    let server = cheap_server().await;
    let b = signed_in_browser(&server, "alice").await;
    let token = account_token(&b, &server).await;
    for (path, extra) in [
        ("/account/sessions/revoke-all", None),
        ("/account/sessions/revoke-others", None),
        ("/logout", None),
        ("/account/sessions/revoke", Some(("session", "x"))),
        ("/account/consents/revoke", Some(("client_id", "x"))),
        ("/account/password", Some(("current_password", PASSWORD))),
    ] {
        type Fields<'a> = Vec<(&'a str, &'a str)>;
        let mut cases: Vec<(Fields, Option<&str>)> = vec![
            (vec![], None),
            (vec![("csrf_token", "wrong")], None),
            (vec![("csrf_token", &token)], Some("https://evil.example")),
        ];
        for (fields, _) in &mut cases {
            if let Some(pair) = extra {
                fields.push(pair);
                fields.push(("new_password", "a new long password"));
            }
        }
        for (fields, origin) in cases {
            let mut request = b.post(server.url(path)).form(&fields);
            if let Some(origin) = origin {
                request = request.header(ORIGIN, origin);
            }
            let page = html(request.send().await.unwrap(), 403).await;
            assert!(page.contains("This form has expired"), "{path}: {page}");
        }
    }
    // Still signed in, password unchanged.
    assert_eq!(get(&b, &server, "/v1/me").await.status(), 200);
    let other = browser();
    assert_eq!(
        sign_in_with(&other, &server, "alice", PASSWORD, None)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn return_to_is_followed_only_to_paths_of_this_server() {
    let server = cheap_server().await;
    server.register("alice").await;
    let kept = ["/account", "/v1/me", "/x/y?z=1#top"];
    let refused = [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%09/evil.example",
        "%2F%2Fevil.example",
        "/..//evil.example",
        "",
    ];
    for target in kept.iter().chain(refused.iter()) {
        let expected = if kept.contains(target) {
            *target
        } else {
            "/account"
        };
        // Shown in the form, and followed after signing in.
        let b = browser();
        let query = format!(
            "/login?{}",
            serde_urlencoded::to_string([("return_to", target)]).unwrap()
        );
        let page = html(get(&b, &server, &query).await, 200).await;
        assert_eq!(
            field(&page, "return_to"),
            expected.replace('&', "&#38;"),
            "{target}"
        );
        let r = sign_in_with(&b, &server, "alice", PASSWORD, Some(target)).await;
        assert_eq!(r.status(), 303, "{target}");
        assert_eq!(location(&r), expected, "{target}");
        // Signed in already: straight on.
        assert_eq!(
            location(&get(&b, &server, &query).await),
            expected,
            "{target}"
        );
    }
    // Raw control characters in the form field.
    let b = browser();
    let r = sign_in_with(&b, &server, "alice", PASSWORD, Some("/\n/evil.example")).await;
    assert_eq!(location(&r), "/account");
}

/// Signing in for an application goes back through this server's
/// authorization endpoint, never straight to the application or anywhere
/// else, whatever `return_to` an attacker puts in a link: only
/// `/v1/authorize` issues codes, and only to registered redirect URIs.
#[tokio::test]
async fn signing_in_for_an_application_returns_only_through_this_server() {
    use common::oauth::{REDIRECT, authorize_path, client};

    let server = cheap_server().await;
    server.register("alice").await;
    let app = client(&server, true, true).await;
    let back = authorize_path(&app.id, "");
    let b = browser();
    let r = sign_in_with(&b, &server, "alice", PASSWORD, Some(&back)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), back);
    let r = get(&b, &server, &back).await;
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).starts_with(&format!("{REDIRECT}?code=ac_")),
        "{}",
        location(&r)
    );

    for target in [
        format!("{REDIRECT}?code=ac_forged&state=xyz"),
        "//app.example/cb".to_owned(),
        format!("https://evil.example{back}"),
        format!("//evil.example{back}"),
        format!("/\\evil.example{back}"),
        format!("/%2F%2Fevil.example{back}"),
    ] {
        let b = browser();
        let r = sign_in_with(&b, &server, "alice", PASSWORD, Some(&target)).await;
        assert_eq!(r.status(), 303, "{target}");
        assert_eq!(location(&r), "/account", "{target}");
    }
}

#[tokio::test]
async fn the_account_page_manages_password_and_sessions() {
    let server = cheap_server().await;
    let b = signed_in_browser(&server, "alice").await;
    // A second browser and a token session (an app).
    let second = browser();
    assert_eq!(
        sign_in_with(&second, &server, "alice", PASSWORD, None)
            .await
            .status(),
        303
    );
    let app = server.tokens("alice").await;
    let page = html(get(&b, &server, "/account").await, 200).await;
    assert_eq!(page.matches("name=\"session\"").count(), 3, "{page}");
    assert!(
        page.contains(">app<") && page.contains(">browser<"),
        "{page}"
    );
    assert_eq!(page.matches("This device").count(), 1);

    let token = field(&page, "csrf_token");
    let sessions: Vec<String> = page
        .split("name=\"session\" value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect();
    // The first listed is this device; revoke the others one by one below.
    let r = post(
        &b,
        &server,
        "/account/sessions/revoke",
        &[("csrf_token", &token), ("session", &sessions[1])],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=revoked");
    // Gone already: said so, not an error.
    let r = post(
        &b,
        &server,
        "/account/sessions/revoke",
        &[("csrf_token", &token), ("session", &sessions[1])],
    )
    .await;
    assert_eq!(location(&r), "/account?done=gone");
    let still = usize::from(get(&second, &server, "/account").await.status() == 200)
        + usize::from(app.me().await.status() == 200);
    assert_eq!(still, 1, "exactly one of the other two sessions ended");

    // Password change: wrong current, refused new, then done.
    let r = post(
        &b,
        &server,
        "/account/password",
        &[
            ("csrf_token", &token),
            ("current_password", "not it at all"),
            ("new_password", "a brand new password"),
        ],
    )
    .await;
    assert!(
        html(r, 403)
            .await
            .contains("The current password is wrong.")
    );
    let r = post(
        &b,
        &server,
        "/account/password",
        &[
            ("csrf_token", &token),
            ("current_password", PASSWORD),
            ("new_password", "short"),
        ],
    )
    .await;
    assert!(html(r, 400).await.contains("at least 8 characters"));
    let r = post(
        &b,
        &server,
        "/account/password",
        &[
            ("csrf_token", &token),
            ("current_password", PASSWORD),
            ("new_password", "a brand new password"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=password");
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("tessera=ts_")
    );
    let page = html(get(&b, &server, "/account?done=password").await, 200).await;
    assert!(page.contains("Your password was changed."));
    // Every other session ended with the change.
    assert_eq!(page.matches("name=\"session\"").count(), 1);
    assert_eq!(get(&second, &server, "/account").await.status(), 303);
    assert_eq!(app.me().await.status(), 401);
    // The old token is dead with the old session; the page has a new one.
    let r = post(
        &b,
        &server,
        "/account/sessions/revoke-others",
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(r.status(), 403);
    let token = field(&page, "csrf_token");

    // Sign out other devices, then everywhere.
    let other = browser();
    sign_in_with(&other, &server, "alice", "a brand new password", None).await;
    let r = post(
        &b,
        &server,
        "/account/sessions/revoke-others",
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(location(&r), "/account?done=others");
    assert_eq!(get(&other, &server, "/account").await.status(), 303);
    assert_eq!(get(&b, &server, "/account").await.status(), 200);
    let r = post(
        &b,
        &server,
        "/account/sessions/revoke-all",
        &[("csrf_token", &token)],
    )
    .await;
    assert_eq!(location(&r), "/login?notice=signed-out");
    assert_eq!(get(&b, &server, "/account").await.status(), 303);
}

#[tokio::test]
async fn revoking_this_device_signs_it_out() {
    let server = cheap_server().await;
    let b = signed_in_browser(&server, "alice").await;
    let page = html(get(&b, &server, "/account").await, 200).await;
    let r = post(
        &b,
        &server,
        "/account/sessions/revoke",
        &[
            ("csrf_token", &field(&page, "csrf_token")),
            ("session", &field(&page, "session")),
        ],
    )
    .await;
    assert_eq!(location(&r), "/login?notice=signed-out");
    assert_eq!(get(&b, &server, "/account").await.status(), 303);
}

#[tokio::test]
async fn hostile_form_input_gets_a_4xx_page_never_a_500() {
    let server = cheap_server().await;
    let b = signed_in_browser(&server, "alice").await;
    let token = account_token(&b, &server).await;
    let anon = browser();
    let login_token = field(
        &html(get(&anon, &server, "/login").await, 200).await,
        "csrf_token",
    );

    let huge = "a".repeat(70 * 1024);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/x-www-form-urlencoded", format!("csrf_token={token}&username={huge}").into_bytes()),
        ("application/x-www-form-urlencoded", b"username=a".to_vec()),
        ("application/x-www-form-urlencoded", Vec::new()),
        ("application/x-www-form-urlencoded", format!("csrf_token={token}&username=a&username=b&password=x&session=s&current_password=x&new_password=y").into_bytes()),
        ("application/x-www-form-urlencoded", [format!("csrf_token={token}&username=").into_bytes(), vec![0xff, 0xfe], b"&password=x&session=\xc0&current_password=x&new_password=y".to_vec()].concat()),
        ("application/x-www-form-urlencoded", format!("csrf_token={token}&username=%FF&password=%&session=%00&current_password=%00&new_password=x").into_bytes()),
        ("application/x-www-form-urlencoded", format!("csrf_token={token}&username=a%00b&password=x&session=a%00&current_password=x%00&new_password=y").into_bytes()),
        ("application/json", format!("{{\"csrf_token\":\"{token}\",\"username\":\"a\"}}").into_bytes()),
        ("multipart/form-data; boundary=x", b"--x--".to_vec()),
        ("text/plain", b"username=a".to_vec()),
    ];
    let paths = [
        "/login",
        "/register",
        "/account/password",
        "/account/sessions/revoke",
        "/account/sessions/revoke-others",
        "/account/mfa/totp/confirm",
        "/account/mfa/totp/disable",
        "/logout",
    ];
    for path in paths {
        for (content_type, body) in &bodies {
            for client in [&b, &anon] {
                let r = client
                    .post(server.url(path))
                    .header(CONTENT_TYPE, *content_type)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let what = format!("{path} {content_type} {} bytes", body.len());
                assert!(
                    status.is_client_error() || status == StatusCode::SEE_OTHER,
                    "{what}: {status}"
                );
                if status.is_client_error() {
                    let page = html(r, status.as_u16()).await;
                    assert!(page.contains("<h1>"), "{what}: {page}");
                }
            }
        }
    }
    // The pre-session token with hostile bodies: still 4xx pages.
    for body in [
        format!("csrf_token={login_token}&username=a&username=b&password=x"),
        format!("csrf_token={login_token}&username=a"),
        format!("csrf_token={login_token}&username=a%00&password=x"),
    ] {
        let r = anon
            .post(server.url("/login"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{body}: {}", r.status());
        html(r, 400).await;
    }
    // A valid token, but a field missing.
    let r = b
        .post(server.url("/account/password"))
        .form(&[("csrf_token", &token[..]), ("current_password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(html(r, 400).await.contains("new_password"));
    // Still signed in: nothing above did anything.
    assert_eq!(get(&b, &server, "/v1/me").await.status(), 200);
    // Hostile query strings on the pages are ignored.
    for query in [
        "%",
        "return_to=%FF",
        "return_to=a&return_to=b",
        "notice=<script>",
        "done=%00",
    ] {
        let r = get(&anon, &server, &format!("/login?{query}")).await;
        assert_eq!(r.status(), 200, "{query}");
        let r = get(&b, &server, &format!("/account?{query}")).await;
        assert!(!html(r, 200).await.contains("<script>"), "{query}");
    }
    // Cookies of every shape.
    for cookie in [
        "tessera=garbage",
        "tessera-login=x",
        "tessera=ts_; tessera-login=",
        "a",
    ] {
        for path in ["/login", "/account", "/register", "/logout"] {
            let r = server
                .anon()
                .get(server.url(path))
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap();
            assert!(
                r.status() == 200 || r.status() == 303,
                "{path} {cookie}: {}",
                r.status()
            );
        }
    }
}

#[tokio::test]
async fn remember_me_keeps_the_long_lifetime() {
    let server = cheap_server().await;
    server.register("alice").await;
    let b = browser();
    let token = field(
        &html(get(&b, &server, "/login").await, 200).await,
        "csrf_token",
    );
    let r = post(
        &b,
        &server,
        "/login",
        &[
            ("csrf_token", &token),
            ("username", "alice"),
            ("password", PASSWORD),
            ("remember_me", "on"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tessera=ts_"))
        .unwrap();
    let remember = server
        .state
        .core()
        .context
        .config()
        .session
        .remember_me_timeout;
    assert!(
        cookie.contains(&format!("Max-Age={}", remember.whole_seconds())),
        "{cookie}"
    );
}

#[tokio::test]
async fn throttled_registrations_say_how_long_to_wait() {
    let mut core = cheap_hashing();
    core.rate_limit.registrations = 1;
    let server = TestServer::with(Options {
        core,
        ..Options::default()
    })
    .await;
    for (username, status) in [("alice", 303), ("bob", 429)] {
        let b = browser();
        let token = field(
            &html(get(&b, &server, "/register").await, 200).await,
            "csrf_token",
        );
        let r = post(
            &b,
            &server,
            "/register",
            &[
                ("csrf_token", &token),
                ("username", username),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(r.status(), status, "{username}");
        if status == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let page = html(r, 429).await;
            assert!(page.contains(&format!("Try again in {wait} s.")), "{page}");
        }
    }
}
