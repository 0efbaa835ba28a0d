//! Two-step verification on the web pages, as a browser without JavaScript
//! uses it: set up on `/account` (QR code, key, first code, recovery codes
//! shown once, turned off with the password), and signing in on `/login`
//! in two steps — through the authorization-code flow too, whose ID token
//! then says how the user signed in (`amr`, `acr`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::oauth::{self, REDIRECT, VERIFIER, authorize_path, form_fields, location};
use common::{Options, PASSWORD, TestServer, jwt_part};
use serde_json::{Value, json};
use tessera_core::clock::{Clock, ManualClock};
use tessera_core::totp::{TotpSecret, step_at};
use time::{Duration, OffsetDateTime};

async fn server() -> (TestServer, ManualClock) {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let server = TestServer::with(Options {
        clock: Some(clock.clone()),
        core: common::cheap_hashing(),
        ..Options::default()
    })
    .await;
    (server, clock)
}

fn code_at(secret: &str, at: OffsetDateTime) -> String {
    let secret = TotpSecret::from_base32(&secret.replace(' ', "")).unwrap();
    format!("{:06}", secret.code(step_at(at)))
}

fn next_step(clock: &ManualClock) {
    let into = clock.now().unix_timestamp().rem_euclid(30);
    clock.advance(Duration::seconds(30 - into));
}

/// A browser: cookie jar, no redirects followed.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An HTML page with `status`, under the pages' rules (no script, no
/// inline style), its text.
async fn html(r: reqwest::Response, status: u16) -> String {
    let got = r.status();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = r.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(!body.contains("<script"), "{body}");
    assert!(!body.contains(" style="), "{body}");
    body
}

fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    let rest = &text[from..];
    &rest[..rest.find(end).unwrap()]
}

/// Sets up an authenticator app on `/account` as a person would; the key.
async fn set_up_on_the_account_page(
    server: &TestServer,
    b: &reqwest::Client,
    clock: &ManualClock,
) -> (String, Vec<String>) {
    let page = html(b.get(server.url("/account")).send().await.unwrap(), 200).await;
    assert!(page.contains("Two-step verification"));
    assert!(page.contains("Set up an authenticator app"));
    let csrf = field(&form_fields(&page), "csrf_token");
    let r = b
        .post(server.url("/account/mfa/totp"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=totp-pending#two-step");
    let page = html(b.get(server.url("/account")).send().await.unwrap(), 200).await;
    // The QR code is drawn here, inline, and the key and URI are in text.
    assert!(
        page.contains(r#"<div class="qr"><svg role="img""#),
        "{page}"
    );
    assert!(!between(&page, r#"<div class="qr">"#, "</div>").contains("src="));
    let key = between(&page, r#"<dt>Key</dt><dd><code class="secret">"#, "</code>").to_owned();
    let uri = between(
        &page,
        r#"<dt>Link</dt><dd><code class="secret">"#,
        "</code>",
    );
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&key.replace(' ', "")));
    // A wrong code: the page again, saying so.
    let right = code_at(&key, clock.now());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = b
        .post(server.url("/account/mfa/totp/confirm"))
        .form(&[("csrf_token", csrf.as_str()), ("code", wrong)])
        .send()
        .await
        .unwrap();
    let page = html(r, 403).await;
    assert!(page.contains("That code is wrong"), "{page}");
    let r = b
        .post(server.url("/account/mfa/totp/confirm"))
        .form(&[("csrf_token", csrf.as_str()), ("code", right.as_str())])
        .send()
        .await
        .unwrap();
    let page = html(r, 200).await;
    let codes: Vec<String> = between(&page, r#"<ul class="codes">"#, "</ul>")
        .split("<code>")
        .skip(1)
        .map(|c| c.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    // Shown once: the page read again has none.
    let page = html(b.get(server.url("/account")).send().await.unwrap(), 200).await;
    assert!(!page.contains(r#"<ul class="codes">"#));
    assert!(page.contains("Recovery codes left: 10"));
    (key, codes)
}

/// `/login`'s first step for `name`: the code page's hidden fields.
async fn password_page(
    server: &TestServer,
    b: &reqwest::Client,
    return_to: &str,
) -> Vec<(String, String)> {
    let page = html(
        b.get(server.url(&format!("/login?return_to={}", oauth::urlencode(return_to))))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let csrf = field(&form_fields(&page), "csrf_token");
    let r = b
        .post(server.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("return_to", return_to),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().starts_with("tessera="))
    );
    let page = html(r, 200).await;
    assert!(page.contains("<h1>Two-step verification</h1>"), "{page}");
    assert!(page.contains(r#"name="code""#));
    // What a browser posts back: the attribute values, entities decoded.
    form_fields(&page)
        .into_iter()
        .map(|(n, v)| (n, v.replace("&#38;", "&").replace("&amp;", "&")))
        .collect()
}

#[tokio::test]
async fn set_up_on_the_account_page_and_sign_in_in_two_steps() {
    let (server, clock) = server().await;
    server.register("alice").await;
    let b = browser();
    let first = password_free_sign_in(&server, &b).await;
    assert_eq!(first.status(), 303);
    let (key, codes) = set_up_on_the_account_page(&server, &b, &clock).await;

    // Another browser signs in: password, then code.
    next_step(&clock);
    let phone = browser();
    let fields = password_page(&server, &phone, "/account").await;
    let mut post = fields.clone();
    post.push(("code".into(), "123".into()));
    let r = phone
        .post(server.url("/login"))
        .form(&post)
        .send()
        .await
        .unwrap();
    let page = html(r, 403).await;
    assert!(
        page.contains("That code is wrong or was used already."),
        "{page}"
    );
    let mut post = fields.clone();
    post.push(("code".into(), code_at(&key, clock.now())));
    let r = phone
        .post(server.url("/login"))
        .form(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
    html(phone.get(server.url("/account")).send().await.unwrap(), 200).await;
    // The same form posted again is refused: its pre-session cookie went
    // with the sign-in.
    let r = phone
        .post(server.url("/login"))
        .form(&post)
        .send()
        .await
        .unwrap();
    html(r, 403).await;
    // A step presented too late goes back to the password.
    let late = browser();
    let mut post = password_page(&server, &late, "/account").await;
    clock.advance(Duration::minutes(5));
    post.push(("code".into(), code_at(&key, clock.now())));
    let r = late
        .post(server.url("/login"))
        .form(&post)
        .send()
        .await
        .unwrap();
    let page = html(r, 403).await;
    assert!(page.contains("Sign in again"), "{page}");
    assert!(page.contains(r#"name="password""#), "{page}");

    // A recovery code works in the same field.
    let tablet = browser();
    let mut post = password_page(&server, &tablet, "/account").await;
    post.push(("code".into(), codes[3].clone()));
    let r = tablet
        .post(server.url("/login"))
        .form(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // Turned off with the password (a wrong one is said so).
    let page = html(b.get(server.url("/account")).send().await.unwrap(), 200).await;
    let csrf = field(&form_fields(&page), "csrf_token");
    let r = b
        .post(server.url("/account/mfa/totp/disable"))
        .form(&[("csrf_token", csrf.as_str()), ("password", "not it at all")])
        .send()
        .await
        .unwrap();
    let page = html(r, 403).await;
    assert!(page.contains("The password is wrong"), "{page}");
    let r = b
        .post(server.url("/account/mfa/totp/disable"))
        .form(&[("csrf_token", csrf.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/account?done=totp-off");
    let r = password_free_sign_in(&server, &browser()).await;
    assert_eq!(r.status(), 303, "the password alone signs in again");
}

/// `/login` with the password for a user without a second factor.
async fn password_free_sign_in(server: &TestServer, b: &reqwest::Client) -> reqwest::Response {
    let page = html(b.get(server.url("/login")).send().await.unwrap(), 200).await;
    let csrf = field(&form_fields(&page), "csrf_token");
    b.post(server.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_authorization_flow_resumes_after_the_second_step_and_the_id_token_says_so() {
    let (server, clock) = server().await;
    let app = oauth::client(&server, true, true).await;
    server.register("alice").await;
    let b = browser();
    password_free_sign_in(&server, &b).await;
    let (key, _) = set_up_on_the_account_page(&server, &b, &clock).await;
    next_step(&clock);

    // A signed-out browser asks for a code: sign-in page, code page, back.
    let phone = browser();
    let r = phone
        .get(server.url(&authorize_path(&app.id, "")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let login = location(&r);
    let return_to = oauth::query_of(&login);
    let return_to = oauth::get(&return_to, "return_to").unwrap().to_owned();
    assert!(return_to.starts_with("/v1/authorize?"), "{return_to}");
    let mut post = password_page(&server, &phone, &return_to).await;
    assert_eq!(field(&post, "return_to"), return_to);
    post.push(("code".into(), code_at(&key, clock.now())));
    let r = phone
        .post(server.url("/login"))
        .form(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), return_to);
    let r = phone.get(server.url(&return_to)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "{back}");
    let code = oauth::get(&oauth::query_of(&back), "code")
        .unwrap()
        .to_owned();
    let r = oauth::exchange(&server, &app, &code, VERIFIER).await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    let id = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["acr"], "urn:tessera:acr:mfa");
    let access = jwt_part(tokens["access_token"].as_str().unwrap(), 1);
    assert_eq!(access["amr"], json!(["pwd", "otp", "mfa"]));

    // The browser that signed in with the password alone (before setting
    // up TOTP) gets one-factor tokens.
    let code = oauth::consent_and_code(&server, &b, &authorize_path(&app.id, "")).await;
    let tokens: Value = oauth::exchange(&server, &app, &code, VERIFIER)
        .await
        .json()
        .await
        .unwrap();
    let id = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id["amr"], json!(["pwd"]));
    assert_eq!(id["acr"], "urn:tessera:acr:pwd");
}
