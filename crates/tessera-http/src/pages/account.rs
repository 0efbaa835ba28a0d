//! `GET /account`: the signed-in user's profile, the password change form,
//! every session of either kind with a way to end it (naming the OAuth
//! client that holds it, if any), and the applications the user allowed
//! with a way to withdraw each, and two-step verification (see
//! `two_step`). The forms post to `account_actions`, which
//! answer 303 back here (or show this page again with what went wrong).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use http::{StatusCode, Uri};
use tessera_core::authorization::ConsentView;
use tessera_core::passkey::PasskeyRecord;
use tessera_core::session::SessionKind;
use tessera_core::user_sessions::ListedSession;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use super::device;
use super::domain;
use super::layout::{Layout, page, with_script};
use super::page_error::PageError;
use super::permissions;
use super::query::PageQuery;
use super::signed_in::{PageUser, SignedIn};
use super::two_step;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    layout: Layout<'a>,
    csrf_token: String,
    username: &'a str,
    user_id: String,
    roles: String,
    created: String,
    created_iso: String,
    sessions: Vec<SessionRow>,
    apps: Vec<AppRow>,
    passkeys: Vec<PasskeyRow>,
    passkeys_available: bool,
    notice: Option<&'static str>,
    password_error: Option<String>,
    two_step: two_step::Section,
}

/// One session as the page lists it.
struct SessionRow {
    id: String,
    device: String,
    user_agent: String,
    kind: &'static str,
    ip: String,
    created: String,
    created_iso: String,
    last_seen: String,
    last_seen_iso: String,
    current: bool,
    /// The OAuth client holding it, by name.
    client: Option<String>,
}

/// One application the user allowed, as the page lists it.
struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    created_iso: String,
    last_used: Option<String>,
    last_used_iso: String,
}

struct AppRow {
    client_id: String,
    name: String,
    permissions: Vec<&'static str>,
    granted: String,
    granted_iso: String,
}

/// What `?done=` may ask the page to say after an action (nothing else:
/// no text of the URL reaches the page).
fn notice(query: &PageQuery) -> Option<&'static str> {
    match query.get("done")? {
        "password" => Some("Your password was changed. Every other device was signed out."),
        "others" => Some("Every other device was signed out."),
        "revoked" => Some("That device was signed out."),
        "gone" => Some("That session had already ended."),
        "app-revoked" => {
            Some("That application's access was withdrawn, and it was signed out everywhere.")
        }
        "app-gone" => Some("That application had no access any more."),
        "passkey-added" => Some("Your passkey was added: you can sign in with it now."),
        "passkey-renamed" => Some("The passkey was renamed."),
        "passkey-removed" => Some("The passkey was removed."),
        "passkey-gone" => Some("That passkey had already been removed."),
        "passkey-name" => Some("That name was not taken: a passkey's name has 1 to 64 characters."),
        "totp-pending" => {
            Some("Add the key to your authenticator app, then enter the code it shows.")
        }
        "totp-off" => Some("Two-step verification is off: your password alone signs you in."),
        _ => None,
    }
}

/// `GET /account`: the signed-in user's profile, password change form,
/// sessions and connected applications.
#[utoipa::path(
    get,
    path = "/account",
    operation_id = "account_page",
    tag = "pages",
    params(("done" = Option<String>, Query, description = "Which action's notice to show (`password`, `revoked`, `gone`, `others`, `app-revoked`, `app-gone`, `totp-pending`, `totp-off`, `passkey-added`, `passkey-renamed`, `passkey-removed`, `passkey-gone`, `passkey-name`)")),
    security(("session_cookie" = [])),
    responses(
        (status = 200, description = "The account page", body = String, content_type = "text/html"),
        (status = 303, response = crate::openapi::responses::SignInFirst),
        (status = "default", response = crate::openapi::responses::PageError),
    ),
)]
pub async fn show(State(state): State<AppState>, SignedIn(user): SignedIn, uri: Uri) -> Response {
    let query = PageQuery::of(&uri);
    render(&state, &user, StatusCode::OK, notice(&query), None).await
}

/// The account page with `status`, a notice and a password-change error.
pub async fn render(
    state: &AppState,
    user: &PageUser,
    status: StatusCode,
    notice: Option<&'static str>,
    password_error: Option<String>,
) -> Response {
    render_with(
        state,
        user,
        status,
        notice,
        password_error,
        two_step::Note::default(),
    )
    .await
}

/// [`render`], with what the two-step section has to say.
pub async fn render_with(
    state: &AppState,
    user: &PageUser,
    status: StatusCode,
    notice: Option<&'static str>,
    password_error: Option<String>,
    note: two_step::Note,
) -> Response {
    let user_id = user.auth.user.id;
    let found = tokio::try_join!(
        domain::sessions(state, user_id),
        domain::consents(state, user_id),
        two_step::section(state, user, note),
        domain::passkeys(state, user_id)
    );
    let (sessions, consents, two_step, passkeys) = match found {
        Ok(found) => found,
        Err(e) => return PageError::from_core(e).render(state),
    };
    let now = domain::now(state);
    let current = &user.auth.session().id;
    let mut rows: Vec<SessionRow> = sessions
        .iter()
        .map(|s| row(s, s.session.id == *current, now))
        .collect();
    // This device first, then newest first as the store answers.
    rows.sort_by_key(|r| !r.current);
    let account = &user.auth.user;
    let passkeys_available = state.core().passkeys.available();
    let layout = if passkeys_available {
        Layout::signed_in(state).with_passkeys(state)
    } else {
        Layout::signed_in(state)
    };
    let response = page(
        status,
        &AccountPage {
            layout,
            csrf_token: domain::csrf_token(state, &user.secret),
            username: account.username.display(),
            user_id: account.id.to_string(),
            roles: account.roles.join(", "),
            created: date(account.created_at),
            created_iso: iso(account.created_at),
            sessions: rows,
            apps: consents.iter().map(app_row).collect(),
            passkeys: passkeys.iter().map(|p| passkey_row(p, now)).collect(),
            passkeys_available,
            notice,
            password_error,
            two_step,
        },
    );
    if passkeys_available {
        with_script(response)
    } else {
        response
    }
}

fn passkey_row(p: &PasskeyRecord, now: OffsetDateTime) -> PasskeyRow {
    PasskeyRow {
        id: p.id.to_string(),
        name: p.name.clone(),
        created: date_time(p.created_at),
        created_iso: iso(p.created_at),
        last_used: p.last_used_at.map(|t| ago(now, t)),
        last_used_iso: p.last_used_at.map(iso).unwrap_or_default(),
    }
}

fn row(listed: &ListedSession, current: bool, now: OffsetDateTime) -> SessionRow {
    let session = &listed.session;
    SessionRow {
        id: session.id.as_str().to_owned(),
        device: device::describe(session.user_agent.as_deref()),
        user_agent: session.user_agent.clone().unwrap_or_default(),
        kind: match session.kind {
            SessionKind::Cookie => "browser",
            SessionKind::Token => "app",
        },
        ip: session
            .ip
            .map_or_else(|| "unknown address".to_owned(), |ip| ip.to_string()),
        created: date_time(session.created_at),
        created_iso: iso(session.created_at),
        last_seen: ago(now, session.last_seen_at),
        last_seen_iso: iso(session.last_seen_at),
        current,
        client: listed.client.as_ref().map(|c| c.client_name.clone()),
    }
}

fn app_row(view: &ConsentView) -> AppRow {
    let consent = &view.consent;
    AppRow {
        client_id: consent.client_id.to_string(),
        name: view.client_name.clone(),
        permissions: permissions::describe(&consent.scope),
        granted: date_time(consent.granted_at),
        granted_iso: iso(consent.granted_at),
    }
}

fn iso(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn date(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[day padding:none] [month repr:long] [year]"
        ))
        .unwrap_or_default()
}

fn date_time(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// How long ago, as people say it (sessions are touched about once a
/// minute, so nothing finer than minutes).
fn ago(now: OffsetDateTime, then: OffsetDateTime) -> String {
    let minutes = (now - then).whole_minutes();
    match minutes {
        ..=0 => "just now".into(),
        1 => "1 minute ago".into(),
        2..=59 => format!("{minutes} minutes ago"),
        60..=119 => "1 hour ago".into(),
        120..=1439 => format!("{} hours ago", minutes / 60),
        _ => date_time(then),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_read_as_people_say_them() {
        let now = datetime!(2026-03-04 12:00 UTC);
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now, now - time::Duration::seconds(90)), "1 minute ago");
        assert_eq!(ago(now, now - time::Duration::minutes(5)), "5 minutes ago");
        assert_eq!(ago(now, now - time::Duration::minutes(61)), "1 hour ago");
        assert_eq!(ago(now, now - time::Duration::hours(5)), "5 hours ago");
        assert_eq!(
            ago(now, now - time::Duration::days(2)),
            "2 Mar 2026, 12:00 UTC"
        );
        assert_eq!(date(now), "4 March 2026");
        assert_eq!(iso(now), "2026-03-04T12:00:00Z");
    }
}
