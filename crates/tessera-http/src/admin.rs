//! The administration API: the admin role or the configured admin token.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tessera_core::keys::StoredKey;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Admin, Client};
use crate::input::{ApiPath, ApiQuery};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::AdminUserView;

/// Most items in one page.
const MAX_PAGE: u32 = 500;
/// Items in a page when `limit` is not given.
const DEFAULT_PAGE: u32 = 100;

fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_PAGE}"
        ))),
    }
}

/// `GET /v1/admin/audit` query.
#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct AuditEntry {
    id: i64,
    kind: String,
    user_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    detail: serde_json::Value,
}

/// A page of the audit log.
#[derive(Serialize)]
pub struct AuditPage {
    events: Vec<AuditEntry>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    next_before: Option<i64>,
}

/// `GET /v1/admin/audit?before=&limit=`: newest first.
pub async fn audit(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = page_size(query.limit)?;
    let records = state.core().audit_log.page(query.before, limit).await?;
    let next_before = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let events = records
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            kind: r.event.kind,
            user_id: r.event.user_id,
            ip: r.event.ip.map(|ip| ip.to_string()),
            user_agent: r.event.user_agent,
            at: r.event.at,
            detail: r.event.detail,
        })
        .collect();
    Ok(Json(AuditPage {
        events,
        next_before,
    }))
}

/// `GET /v1/admin/users` query.
#[derive(Deserialize)]
pub struct UsersQuery {
    after: Option<String>,
    limit: Option<u32>,
}

/// A page of users.
#[derive(Serialize)]
pub struct UsersPage {
    users: Vec<AdminUserView>,
    /// Pass as `after` to get the next page; absent on the last page.
    next_after: Option<String>,
}

/// `GET /v1/admin/users?after=&limit=`: by normalised username.
pub async fn users(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<UsersQuery>,
) -> Result<Json<UsersPage>, ApiError> {
    let limit = page_size(query.limit)?;
    let users = state
        .core()
        .accounts
        .list_users(query.after.as_deref(), limit)
        .await?;
    let next_after = (users.len() == limit as usize)
        .then(|| users.last().map(|u| u.username.normalized().to_owned()))
        .flatten();
    Ok(Json(UsersPage {
        users: users.iter().map(AdminUserView::from).collect(),
        next_after,
    }))
}

fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found())
}

/// `POST /v1/admin/users/{id}/disable`: blocks sign-in and revokes every session.
pub async fn disable(
    State(state): State<AppState>,
    Client(client): Client,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    set_disabled(&state, &client, &id, true).await
}

/// `POST /v1/admin/users/{id}/enable`: allows sign-in again.
pub async fn enable(
    State(state): State<AppState>,
    Client(client): Client,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    set_disabled(&state, &client, &id, false).await
}

async fn set_disabled(
    state: &AppState,
    client: &tessera_core::client::ClientInfo,
    id: &str,
    disabled: bool,
) -> Result<StatusCode, ApiError> {
    state
        .core()
        .accounts
        .set_disabled(user_id(id)?, disabled, client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/admin/users/{id}/sessions`: signs the user out everywhere.
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Client(client): Client,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = user_id(&id)?;
    state
        .core()
        .accounts
        .user(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    state
        .core()
        .user_sessions
        .revoke_all(id, None, &client, "admin")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signing key as administrators see it (never its private part).
#[derive(Serialize)]
pub struct KeyView {
    kid: String,
    algorithm: &'static str,
    /// `access`, or `id_token` for the RS256 key that signs only ID tokens.
    purpose: &'static str,
    current: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    retired_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

impl From<&StoredKey> for KeyView {
    fn from(key: &StoredKey) -> Self {
        Self {
            kid: key.kid.clone(),
            algorithm: key.algorithm.as_str(),
            purpose: key.purpose.as_str(),
            current: key.retired_at.is_none(),
            created_at: key.created_at,
            retired_at: key.retired_at,
            expires_at: key.expires_at,
        }
    }
}

/// `GET /v1/admin/keys`: every stored signing key, current first.
pub async fn keys(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = state.core().signing_keys.list().await?;
    Ok(Json(keys.iter().map(KeyView::from).collect()))
}

/// `POST /v1/admin/keys/rotate`: a new signing key becomes current; the old
/// one stays in the JWKS until the tokens it signed have expired.
pub async fn rotate_keys(
    State(state): State<AppState>,
    Client(client): Client,
    _admin: Admin,
) -> Result<Json<KeyView>, ApiError> {
    let key = state.core().signing_keys.rotate(&client).await?;
    Ok(Json(KeyView::from(&key)))
}
