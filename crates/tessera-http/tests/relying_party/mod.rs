//! A tiny relying party on an origin of its own, for the browser test of
//! the authorization-code flow: it builds authorization URLs (PKCE S256,
//! `state`, `nonce`), and its `/callback` does what a web application's
//! back end would: checks `state` and `iss`, exchanges the code at once,
//! checks the ID token's claims, calls UserInfo, and shows the outcome on a
//! page the browser then reads.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::response::Html;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::common::jwt_part;

/// What the callback received and made of it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A code, exchanged: the ID token's claims and UserInfo's answer.
    SignedIn {
        flow: String,
        id_token: Value,
        userinfo: Value,
        session_id: String,
    },
    /// An error sent back by the authorization server.
    Refused {
        flow: String,
        error: String,
        iss: Option<String>,
    },
    /// Anything the relying party could not accept.
    Broken(String),
}

/// One authorization request in flight, keyed by its `state`.
struct Pending {
    flow: String,
    verifier: String,
    nonce: String,
}

struct Inner {
    issuer: String,
    client_id: String,
    redirect_uri: String,
    pending: Mutex<HashMap<String, Pending>>,
    outcomes: Mutex<Vec<Outcome>>,
}

/// The relying party, serving on its own loopback port.
#[derive(Clone)]
pub struct RelyingParty {
    inner: Arc<Inner>,
}

/// A listener on a free loopback port and the callback URL it will serve:
/// the redirect URI to register before the relying party starts.
pub async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_uri = format!("http://{}/callback", listener.local_addr().unwrap());
    (listener, redirect_uri)
}

impl RelyingParty {
    /// Serves `/callback` on `listener` for `client_id` of `issuer`.
    pub fn serve(
        listener: tokio::net::TcpListener,
        redirect_uri: &str,
        issuer: &str,
        client_id: &str,
    ) -> Self {
        let rp = Self {
            inner: Arc::new(Inner {
                issuer: issuer.to_owned(),
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                pending: Mutex::new(HashMap::new()),
                outcomes: Mutex::new(Vec::new()),
            }),
        };
        let app = axum::Router::new()
            .route("/callback", axum::routing::get(callback))
            .with_state(rp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        rp
    }

    /// The prefix every callback URL starts with.
    pub fn redirect_uri(&self) -> &str {
        &self.inner.redirect_uri
    }

    /// A fresh authorization URL (new verifier, state and nonce) for the
    /// flow named `flow`, with `extra` query parameters.
    pub fn authorization_url(&self, flow: &str, extra: &[(&str, &str)]) -> String {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        let challenge = URL_SAFE_NO_PAD.encode(digest.as_ref());
        let state = uuid::Uuid::new_v4().simple().to_string();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", self.inner.client_id.as_str()),
            ("redirect_uri", self.inner.redirect_uri.as_str()),
            ("scope", "openid profile"),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let query = serde_urlencoded::to_string(&params).unwrap();
        self.inner.pending.lock().unwrap().insert(
            state,
            Pending {
                flow: flow.to_owned(),
                verifier,
                nonce,
            },
        );
        format!("{}/v1/authorize?{query}", self.inner.issuer)
    }

    /// Everything the callback has seen, in order.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.inner.outcomes.lock().unwrap().clone()
    }
}

/// `GET /callback`: the outcome, recorded and shown.
async fn callback(State(rp): State<RelyingParty>, RawQuery(query): RawQuery) -> Html<String> {
    let outcome = handle(&rp.inner, query.as_deref().unwrap_or_default()).await;
    let text = match &outcome {
        Outcome::SignedIn { userinfo, .. } => {
            let username = userinfo["preferred_username"].as_str().unwrap_or("?");
            format!("Signed in as {username}")
        }
        Outcome::Refused { error, .. } => format!("Refused: {error}"),
        Outcome::Broken(why) => format!("Broken: {why}"),
    };
    rp.inner.outcomes.lock().unwrap().push(outcome);
    // No script and no favicon request: the browser's console stays clean.
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Photos</title>\
         <link rel=icon href=\"data:,\"></head><body><p id=result>{}</p></body></html>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    ))
}

async fn handle(rp: &Inner, query: &str) -> Outcome {
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) else {
        return Outcome::Broken(format!("unreadable query {query:?}"));
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let Some(pending) = get("state").and_then(|s| rp.pending.lock().unwrap().remove(&s)) else {
        return Outcome::Broken(format!("unknown or missing state in {query:?}"));
    };
    let iss = get("iss");
    if let Some(error) = get("error") {
        return Outcome::Refused {
            flow: pending.flow,
            error,
            iss,
        };
    }
    if iss.as_deref() != Some(rp.issuer.as_str()) {
        return Outcome::Broken(format!("iss is {iss:?}, not {:?}", rp.issuer));
    }
    let Some(code) = get("code") else {
        return Outcome::Broken(format!("no code in {query:?}"));
    };
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/v1/token", rp.issuer))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", rp.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
            ("client_id", rp.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let tokens: Value = response.json().await.unwrap();
    if status != 200 {
        return Outcome::Broken(format!("exchange answered {status}: {tokens}"));
    }
    let Some(id_token) = tokens["id_token"].as_str() else {
        return Outcome::Broken(format!("no id_token in {tokens}"));
    };
    let id_token = jwt_part(id_token, 1);
    if id_token["nonce"] != pending.nonce.as_str() || id_token["aud"] != rp.client_id.as_str() {
        return Outcome::Broken(format!("ID token for another request: {id_token}"));
    }
    let userinfo: Value = http
        .get(format!("{}/v1/userinfo", rp.issuer))
        .bearer_auth(tokens["access_token"].as_str().unwrap_or_default())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Outcome::SignedIn {
        flow: pending.flow,
        id_token,
        userinfo,
        session_id: tokens["session_id"].as_str().unwrap_or_default().to_owned(),
    }
}
