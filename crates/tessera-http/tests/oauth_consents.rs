//! What a user granted OAuth clients, made visible and revocable: the
//! client on each session it holds (`/v1/me/sessions`, `/account`), the
//! consents listed (`/account`, `GET /v1/me/consents`) and withdrawn
//! (`POST /account/consents/revoke`, `DELETE /v1/me/consents/{id}`), which
//! ends that client's sessions of that user and nobody else's, and makes
//! the next authorization ask again. And the hostile cases: no CSRF token,
//! another user's consent, unknown and malformed ids.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::oauth::{
    App, REDIRECT, VERIFIER, authorize_path, browser, client_named, consent_and_code, exchange,
    form_fields, location, signed_in_tokens,
};
use common::{INTROSPECTION_SECRET, TestServer, cheap_hashing, oauth_error, problem};
use reqwest::Method;
use serde_json::Value;

async fn cheap_server() -> TestServer {
    TestServer::with(common::Options {
        core: cheap_hashing(),
        ..common::Options::default()
    })
    .await
}

/// Access and refresh token of one token session.
struct Tokens {
    access: String,
    refresh: String,
    session_id: String,
}

/// Signs `b` through `app`'s authorization (consenting if asked) and
/// exchanges the code.
async fn tokens_for(server: &TestServer, app: &App, b: &reqwest::Client) -> Tokens {
    let body = signed_in_tokens(server, app, b).await;
    Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        session_id: body["session_id"].as_str().unwrap().to_owned(),
    }
}

/// `GET /v1/me` with a bearer token: the status.
async fn me(server: &TestServer, access: &str) -> u16 {
    server
        .anon()
        .get(server.url("/v1/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Whether the refresh token still gives a new pair; on success the new
/// refresh token replaces it.
async fn refreshes(server: &TestServer, tokens: &mut Tokens) -> bool {
    let r = server.refresh(&tokens.refresh).await;
    if r.status() != 200 {
        oauth_error(r, 400, "invalid_grant").await;
        return false;
    }
    let body: Value = r.json().await.unwrap();
    tokens.refresh = body["refresh_token"].as_str().unwrap().to_owned();
    tokens.access = body["access_token"].as_str().unwrap().to_owned();
    true
}

/// The account page's HTML (200, no inline script or style).
async fn account(server: &TestServer, b: &reqwest::Client, path: &str) -> String {
    let r = b.get(server.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("<script") && !html.contains(" style="),
        "{html}"
    );
    html
}

/// The CSRF token in the account page's forms.
async fn page_token(server: &TestServer, b: &reqwest::Client) -> String {
    let html = account(server, b, "/account").await;
    form_fields(&html)
        .into_iter()
        .find(|(n, _)| n == "csrf_token")
        .unwrap()
        .1
}

/// The client ids the account page offers to revoke.
fn listed_apps(html: &str) -> Vec<String> {
    form_fields(html)
        .into_iter()
        .filter(|(n, _)| n == "client_id")
        .map(|(_, v)| v)
        .collect()
}

/// Posts the "Revoke access" form.
async fn revoke_on_page(
    server: &TestServer,
    b: &reqwest::Client,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    b.post(server.url("/account/consents/revoke"))
        .header("origin", &server.base)
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// `GET /v1/me/consents` with a bearer token.
async fn consents(server: &TestServer, access: &str) -> Vec<Value> {
    let r = server
        .anon()
        .get(server.url("/v1/me/consents"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["consents"].as_array().unwrap().clone()
}

/// `DELETE /v1/me/consents/{id}` with a bearer token.
async fn revoke_by_api(server: &TestServer, access: &str, id: &str) -> reqwest::Response {
    server
        .anon()
        .delete(server.url(&format!("/v1/me/consents/{id}")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// The sids in the revocation feed.
async fn revoked_sids(server: &TestServer) -> Vec<String> {
    let r = server
        .anon()
        .get(server.url("/v1/revocations?since=0"))
        .bearer_auth(INTROSPECTION_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "sid")
        .map(|r| r["value"].as_str().unwrap().to_owned())
        .collect()
}

async fn audit(server: &TestServer) -> Vec<Value> {
    let r = server.admin(Method::GET, "/v1/admin/audit?limit=500").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn sessions_and_the_account_page_name_the_client_and_list_the_consents() {
    let server = cheap_server().await;
    let photos = client_named(&server, "Photos", true, false).await;
    let notes = client_named(&server, "Notes & <Co>", false, false).await;
    let b = browser(&server, "alice").await;
    let by_photos = tokens_for(&server, &photos, &b).await;
    let by_notes = tokens_for(&server, &notes, &b).await;
    let plain = server.tokens("alice").await;

    // /v1/me/sessions: the client on the sessions it holds, on no other.
    let r = b.get(server.url("/v1/me/sessions")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sessions: Vec<Value> = r.json().await.unwrap();
    assert_eq!(sessions.len(), 4, "{sessions:?}");
    let find = |id: &str| {
        sessions
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing from {sessions:?}"))
            .clone()
    };
    let s = find(&by_photos.session_id);
    assert_eq!(s["kind"], "token");
    assert_eq!(s["client_id"], photos.id.as_str());
    assert_eq!(s["client_name"], "Photos");
    let s = find(&by_notes.session_id);
    assert_eq!(s["client_id"], notes.id.as_str());
    assert_eq!(s["client_name"], "Notes & <Co>");
    for s in [find(&plain.session_id)].iter().chain(
        sessions
            .iter()
            .filter(|s| s["kind"] == "cookie")
            .collect::<Vec<_>>(),
    ) {
        let fields = s.as_object().unwrap();
        assert!(
            !fields.contains_key("client_id") && !fields.contains_key("client_name"),
            "{s}"
        );
    }

    // The account page: the client on its sessions, and both consents.
    let html = account(&server, &b, "/account").await;
    assert!(html.contains("via Photos"), "{html}");
    assert!(html.contains("via Notes &#38; &#60;Co&#62;"), "{html}");
    assert!(!html.contains("<Co>"), "names are escaped: {html}");
    assert!(html.contains("Connected applications"), "{html}");
    let apps = listed_apps(&html);
    assert_eq!(apps.len(), 2);
    assert!(
        apps.contains(&photos.id) && apps.contains(&notes.id),
        "{apps:?}"
    );
    assert_eq!(html.matches(">Revoke access</button>").count(), 2);
    assert!(html.contains("aria-label=\"Revoke access for Photos\""));
    assert!(html.contains("see your username"), "{html}");
    assert!(html.contains("Allowed <time datetime=\""), "{html}");

    // The same for API clients, by bearer token or cookie.
    let listed = consents(&server, &plain.access).await;
    assert_eq!(listed.len(), 2);
    let photos_consent = listed.iter().find(|c| c["client_id"] == photos.id.as_str());
    let c = photos_consent.unwrap();
    assert_eq!(c["client_name"], "Photos");
    assert_eq!(c["scope"], "openid profile");
    let granted = c["granted_at"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(granted, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{granted}"
    );
    let r = b.get(server.url("/v1/me/consents")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let by_cookie: Value = r.json().await.unwrap();
    assert_eq!(by_cookie["consents"].as_array().unwrap().len(), 2);

    // A user without any: an empty list, and the page says so.
    let bob = browser(&server, "bob").await;
    let html = account(&server, &bob, "/account").await;
    assert!(html.contains("No application has access to your account."));
    assert!(listed_apps(&html).is_empty());
    let bobs = server.tokens("bob").await;
    assert!(consents(&server, &bobs.access).await.is_empty());
    // Signed out: 401.
    let r = server
        .anon()
        .get(server.url("/v1/me/consents"))
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
}

#[tokio::test]
async fn revoking_on_the_page_ends_that_clients_sessions_of_that_user_only() {
    let server = cheap_server().await;
    let photos = client_named(&server, "Photos", true, false).await;
    let notes = client_named(&server, "Notes", true, false).await;
    let b = browser(&server, "alice").await;
    let mut first = tokens_for(&server, &photos, &b).await;
    let mut second = tokens_for(&server, &photos, &b).await;
    let mut by_notes = tokens_for(&server, &notes, &b).await;
    let plain = server.tokens("alice").await;
    // A code issued but not yet exchanged goes with the consent.
    let pending = consent_and_code(&server, &b, &authorize_path(&photos.id, "")).await;
    // Bob uses Photos too.
    let bob = browser(&server, "bob").await;
    let mut bobs = tokens_for(&server, &photos, &bob).await;

    let token = page_token(&server, &b).await;
    let r = revoke_on_page(
        &server,
        &b,
        &[("csrf_token", &token), ("client_id", &photos.id)],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account?done=app-revoked");

    // Every Photos session of alice's has ended: refresh refused, access
    // token refused, each sid announced to verifiers.
    for tokens in [&mut first, &mut second] {
        assert_eq!(me(&server, &tokens.access).await, 401);
        assert!(!refreshes(&server, tokens).await);
    }
    let revoked = revoked_sids(&server).await;
    assert!(revoked.contains(&first.session_id), "{revoked:?}");
    assert!(revoked.contains(&second.session_id), "{revoked:?}");
    oauth_error(
        exchange(&server, &photos, &pending, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;

    // Nothing else ended: her other client, her own token, this browser,
    // and Bob's Photos session.
    assert!(refreshes(&server, &mut by_notes).await);
    assert_eq!(me(&server, &by_notes.access).await, 200);
    assert_eq!(me(&server, &plain.access).await, 200);
    assert!(refreshes(&server, &mut bobs).await);
    assert_eq!(me(&server, &bobs.access).await, 200);
    assert!(!revoked.contains(&by_notes.session_id));
    assert!(!revoked.contains(&bobs.session_id));
    let bobs_consents = consents(&server, &bobs.access).await;
    assert_eq!(bobs_consents.len(), 1);
    assert_eq!(bobs_consents[0]["client_id"], photos.id.as_str());

    let html = account(&server, &b, "/account?done=app-revoked").await;
    assert!(html.contains("access was withdrawn"), "{html}");
    assert_eq!(listed_apps(&html), vec![notes.id.clone()]);
    assert!(
        !html.contains("via Photos") && html.contains("via Notes"),
        "{html}"
    );

    // Audited: the withdrawal, and each session's end.
    let events = audit(&server).await;
    assert!(
        events.iter().any(|e| e["kind"] == "consent.revoked"
            && e["detail"]["client_id"] == photos.id.as_str()
            && e["detail"]["sessions_ended"] == 2),
        "{events:?}"
    );
    for sid in [&first.session_id, &second.session_id] {
        assert!(
            events.iter().any(|e| e["kind"] == "session.revoked"
                && e["detail"]["session_id"] == sid.as_str()
                && e["detail"]["by"] == "consent_revoked"),
            "{events:?}"
        );
    }

    // Again: nothing left to withdraw, said so.
    let r = revoke_on_page(
        &server,
        &b,
        &[("csrf_token", &token), ("client_id", &photos.id)],
    )
    .await;
    assert_eq!(location(&r), "/account?done=app-gone");
    assert!(
        account(&server, &b, "/account?done=app-gone")
            .await
            .contains("That application had no access any more.")
    );

    // The next authorization asks again (and Notes still does not).
    let r = b
        .get(server.url(&authorize_path(&photos.id, "")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Allow Photos?"));
    let r = b
        .get(server.url(&authorize_path(&notes.id, "")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with(REDIRECT));
    // Consenting again works as the first time.
    let mut again = tokens_for(&server, &photos, &b).await;
    assert!(refreshes(&server, &mut again).await);
}

#[tokio::test]
async fn revoking_on_the_page_needs_the_csrf_token_and_the_users_own_consent() {
    let server = cheap_server().await;
    let photos = client_named(&server, "Photos", true, false).await;
    let b = browser(&server, "alice").await;
    let mut alices = tokens_for(&server, &photos, &b).await;
    let token = page_token(&server, &b).await;

    // Without the token, with a wrong one, or from another site: 403 and
    // nothing changes.
    for (fields, origin) in [
        (
            vec![("client_id", photos.id.as_str())],
            server.base.as_str(),
        ),
        (
            vec![("csrf_token", "wrong"), ("client_id", photos.id.as_str())],
            server.base.as_str(),
        ),
        (
            vec![
                ("csrf_token", token.as_str()),
                ("client_id", photos.id.as_str()),
            ],
            "https://evil.example",
        ),
    ] {
        let r = b
            .post(server.url("/account/consents/revoke"))
            .header("origin", origin)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{fields:?} from {origin}");
        assert!(r.text().await.unwrap().contains("This form has expired"));
    }
    assert!(refreshes(&server, &mut alices).await);
    assert_eq!(
        listed_apps(&account(&server, &b, "/account").await).len(),
        1
    );

    // Another user naming alice's client: there is nothing of theirs to
    // withdraw, and alice keeps hers.
    let mallory = browser(&server, "mallory").await;
    let theirs = page_token(&server, &mallory).await;
    let r = revoke_on_page(
        &server,
        &mallory,
        &[("csrf_token", &theirs), ("client_id", &photos.id)],
    )
    .await;
    assert_eq!(location(&r), "/account?done=app-gone");
    assert!(refreshes(&server, &mut alices).await);
    assert_eq!(
        listed_apps(&account(&server, &b, "/account").await).len(),
        1
    );

    // Unknown and malformed ids: said gone, never an error; a form without
    // the field is refused with a 4xx page.
    for id in [
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
        "",
        &"9".repeat(5000),
        "\u{202e}\u{1f4a5}",
    ] {
        let r = revoke_on_page(&server, &b, &[("csrf_token", &token), ("client_id", id)]).await;
        assert_eq!(r.status(), 303, "{id}");
        assert_eq!(location(&r), "/account?done=app-gone");
    }
    let r = revoke_on_page(&server, &b, &[("csrf_token", &token)]).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(refreshes(&server, &mut alices).await);

    // Signed out: to the sign-in page, nothing withdrawn.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anon
        .post(server.url("/account/consents/revoke"))
        .form(&[("csrf_token", token.as_str()), ("client_id", &photos.id)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/login"));
    assert!(refreshes(&server, &mut alices).await);
}

#[tokio::test]
async fn the_api_revokes_with_the_same_rules() {
    let server = cheap_server().await;
    let photos = client_named(&server, "Photos", true, false).await;
    let notes = client_named(&server, "Notes", true, false).await;
    let b = browser(&server, "alice").await;
    let mut by_photos = tokens_for(&server, &photos, &b).await;
    let mut by_notes = tokens_for(&server, &notes, &b).await;
    let plain = server.tokens("alice").await;
    let bob = browser(&server, "bob").await;
    let bobs = server.tokens("bob").await;
    let _ = tokens_for(&server, &notes, &bob).await;

    // Another user's consent: 404, and alice keeps hers.
    problem(revoke_by_api(&server, &bobs.access, &photos.id).await, 404).await;
    assert!(refreshes(&server, &mut by_photos).await);
    // Unknown and malformed ids: 4xx problems, never a 500.
    for id in [
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
        "%00",
        "%FF%FE",
        "..%2F..%2Fetc",
        &"a".repeat(4000),
        "%E2%80%AE%F0%9F%92%A5",
    ] {
        let r = revoke_by_api(&server, &plain.access, id).await;
        let status = r.status();
        assert!(status.is_client_error(), "{id}: {status}");
        problem(r, status.as_u16()).await;
    }
    assert_eq!(consents(&server, &plain.access).await.len(), 2);

    // By cookie: the CSRF token is required (and nothing changes without).
    let r = b
        .delete(server.url(&format!("/v1/me/consents/{}", photos.id)))
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    assert!(refreshes(&server, &mut by_photos).await);
    let session: Value = b
        .get(server.url("/v1/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = b
        .delete(server.url(&format!("/v1/me/consents/{}", photos.id)))
        .header("x-csrf-token", session["csrf_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(!refreshes(&server, &mut by_photos).await);
    assert_eq!(me(&server, &by_photos.access).await, 401);
    assert!(revoked_sids(&server).await.contains(&by_photos.session_id));
    problem(revoke_by_api(&server, &plain.access, &photos.id).await, 404).await;

    // A client may withdraw its own access with its own token: its session
    // ends with it.
    let r = revoke_by_api(&server, &by_notes.access, &notes.id).await;
    assert_eq!(r.status(), 204);
    assert_eq!(me(&server, &by_notes.access).await, 401);
    assert!(!refreshes(&server, &mut by_notes).await);
    assert!(consents(&server, &plain.access).await.is_empty());
    // Bob's consent to Notes is his own.
    let bobs_consents = consents(&server, &bobs.access).await;
    assert_eq!(bobs_consents.len(), 1);
    assert_eq!(bobs_consents[0]["client_id"], notes.id.as_str());
    // The authorization asks again.
    let r = b
        .get(server.url(&authorize_path(&notes.id, "")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Allow Notes?"));
}
