//! The authorization-code flow as a test drives it: a registered client, a
//! signed-in browser, the consent page, the code, the exchange.

use serde_json::{Value, json};

use super::{ADMIN_TOKEN, PASSWORD, TestServer};

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "https://app.example/cb";

/// A registered client.
pub struct App {
    pub id: String,
    pub secret: Option<String>,
}

/// Registers a client named "Photos".
pub async fn client(server: &TestServer, public: bool, skip_consent: bool) -> App {
    client_named(server, "Photos", public, skip_consent).await
}

/// Registers a client named `name`, redirecting to [`REDIRECT`].
pub async fn client_named(
    server: &TestServer,
    name: &str,
    public: bool,
    skip_consent: bool,
) -> App {
    let r = server
        .anon()
        .post(server.url("/v1/admin/clients"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "name": name,
            "redirect_uris": [REDIRECT],
            "public": public,
            "skip_consent": skip_consent,
            "post_logout_redirect_uris": ["https://app.example/bye"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    App {
        id: body["client_id"].as_str().unwrap().to_owned(),
        secret: body["client_secret"].as_str().map(str::to_owned),
    }
}

/// A browser: cookie jar, no redirects followed.
pub async fn browser(server: &TestServer, username: &str) -> reqwest::Client {
    server.register(username).await;
    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = b
        .post(server.url("/v1/session"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    b
}

pub fn authorize_path(client_id: &str, extra: &str) -> String {
    format!(
        "/v1/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile&state=xyz&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        urlencode(REDIRECT)
    )
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_owned()
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

pub fn query_of(location: &str) -> Vec<(String, String)> {
    let q = location.split_once('?').unwrap().1;
    serde_urlencoded::from_str(q).unwrap()
}

pub fn get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The hidden fields of a form (all of a page's forms, in order).
pub fn form_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let name = rest
                .split("name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = rest
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            (
                name.to_owned(),
                value
                    .replace("&#43;", "+")
                    .replace("&#x2f;", "/")
                    .replace("&#47;", "/"),
            )
        })
        .collect()
}

/// Goes through the consent page (allowing) if it is shown and returns the
/// code.
pub async fn consent_and_code(server: &TestServer, b: &reqwest::Client, path: &str) -> String {
    let r = b.get(server.url(path)).send().await.unwrap();
    let loc = if r.status() == 200 {
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("form-action 'self' https://app.example"),
            "{csp}"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("<h1>Allow "), "{html}");
        let mut fields = form_fields(&html);
        fields.push(("decision".into(), "allow".into()));
        let r = b
            .post(server.url("/v1/authorize"))
            .header("origin", &server.base)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{:?}", r.text().await);
        location(&r)
    } else {
        assert_eq!(r.status(), 302);
        location(&r)
    };
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = query_of(&loc);
    assert_eq!(get(&q, "state"), Some("xyz"));
    assert_eq!(get(&q, "iss"), Some(server.base.as_str()));
    get(&q, "code").unwrap().to_owned()
}

pub async fn exchange(
    server: &TestServer,
    app: &App,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("client_id", app.id.as_str()),
    ];
    if let Some(secret) = &app.secret {
        fields.push(("client_secret", secret));
    }
    server.token_request(&fields).await
}

/// Tokens of one exchange for a signed-in browser (consenting if asked).
pub async fn signed_in_tokens(server: &TestServer, app: &App, b: &reqwest::Client) -> Value {
    let code = consent_and_code(server, b, &authorize_path(&app.id, "")).await;
    let r = exchange(server, app, &code, VERIFIER).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
