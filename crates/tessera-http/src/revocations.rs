//! `GET /v1/revocations`: the revocation set for outside verifiers, as a page
//! after a cursor or as a live server-sent event stream: the backlog after
//! the cursor (`event: revocation`), one `event: synced`, then each new
//! revocation as it happens, with a comment heartbeat every second.

use std::convert::Infallible;
use std::time::Duration;

use crate::json::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::revocation::Revocation;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::input::ApiQuery;
use crate::oauth::authorize_verifier;
use crate::openapi::responses as r;
use crate::problem::ApiError;
use crate::state::AppState;

/// Most entries in one page.
const PAGE: u32 = 1000;
/// A comment line this often on a live stream: a verifier that hears
/// nothing for a few of these knows its feed is dead, even when TCP does not.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Query of `GET /v1/revocations`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Since {
    /// The cursor: entries after it (default 0, or `Last-Event-ID`).
    #[param(minimum = 0)]
    since: Option<i64>,
}

/// A page of the revocation set.
#[derive(Serialize, utoipa::ToSchema)]
struct RevocationPage {
    /// At most 1000 entries, oldest first.
    revocations: Vec<Revocation>,
    /// Pass as `since` next time.
    cursor: i64,
    /// Whether more entries wait after this page.
    more: bool,
}

/// `GET /v1/revocations?since=N`, JSON or `text/event-stream`.
///
/// For verifiers: the revoked `sid`s and `jti`s after a cursor, as a page,
/// or (`Accept: text/event-stream`) as a stream: the backlog
/// (`event: revocation`, `id:` its `seq`, data a `Revocation`), one
/// `event: synced` (data `{"cursor": N}`), then each revocation as it
/// happens, with a comment heartbeat every second.
#[utoipa::path(
    get,
    path = "/v1/revocations",
    tag = "verifiers",
    params(
        Since,
        ("Last-Event-ID" = Option<i64>, Header, description = "The cursor when `since` is absent (a reconnecting event stream)"),
        ("Accept" = Option<String>, Header, description = "`text/event-stream` for the live stream"),
    ),
    security(("introspection_secret" = []), ("admin_token" = []), ("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "A page after the cursor, or the live stream",
            content(
                (RevocationPage = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::VerifierRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn revocations(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, Response> {
    let (mut parts, _body) = request.into_parts();
    authorize_verifier(&mut parts, &state)
        .await
        .map_err(IntoResponse::into_response)?;
    let ApiQuery(query) = ApiQuery::<Since>::from_request_parts(&mut parts, &state)
        .await
        .map_err(IntoResponse::into_response)?;
    let since = match (query.since, last_event_id(&parts.headers)) {
        (Some(since), _) | (None, Some(since)) => since,
        (None, None) => 0,
    };
    if since < 0 {
        return Err(ApiError::bad_request("`since` must not be negative").into_response());
    }
    if wants_stream(&parts.headers) {
        return Ok(stream(state, since));
    }
    let revocations = state
        .core()
        .revocations
        .since(since, PAGE)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let cursor = revocations.last().map_or(since, |r| r.seq);
    let more = revocations.len() == PAGE as usize;
    Ok(Json(RevocationPage {
        revocations,
        cursor,
        more,
    })
    .into_response())
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn event(r: &Revocation) -> Event {
    Event::default()
        .event("revocation")
        .id(r.seq.to_string())
        .json_data(r)
        .unwrap_or_else(|_| Event::default().comment("unserialisable entry"))
}

/// The backlog after `since`, then every new revocation as it happens. The
/// subscription starts before the backlog is read, so nothing falls between.
fn stream(state: AppState, since: i64) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(256);
    let mut live = state.core().revocations.set().subscribe();
    tokio::spawn(async move {
        let mut last = since;
        let mut replayed = std::collections::HashSet::new();
        loop {
            let page = match state.core().revocations.since(last, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "revocation stream cannot read the store");
                    return;
                }
            };
            for r in &page {
                if tx.send(Ok(event(r))).await.is_err() {
                    return;
                }
                replayed.insert(r.seq);
                last = r.seq;
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        // Tells a verifier it now holds everything up to `last`: from here
        // on it is current, and only then may it trust its set again.
        let synced = Event::default()
            .event("synced")
            .data(format!("{{\"cursor\":{last}}}"));
        if tx.send(Ok(synced)).await.is_err() {
            return;
        }
        loop {
            match live.recv().await {
                // Live entries can arrive out of order from other nodes;
                // only what the backlog already sent is skipped.
                Ok(r) => {
                    if !replayed.remove(&r.seq) && tx.send(Ok(event(&r))).await.is_err() {
                        return;
                    }
                }
                // A lagging subscriber ends its stream; the client reconnects
                // with Last-Event-ID and catches up from the store.
                Err(
                    broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed,
                ) => return,
            }
        }
    });
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response()
}
