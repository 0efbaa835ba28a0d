//! The administration API: the admin role or the configured admin token.

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tessera_core::keys::StoredKey;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Admin, Client};
use crate::input::{ApiPath, ApiQuery};
use crate::openapi::responses as r;
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
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events older than this id (`next_before` of the previous page).
    before: Option<i64>,
    /// Events in the page (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// One audit event.
#[derive(Serialize, utoipa::ToSchema)]
struct AuditEntry {
    /// Position in the log.
    id: i64,
    /// What happened (`session.created`, `token.refresh_reused`, ...).
    kind: String,
    /// The user concerned, if any.
    user_id: Option<Uuid>,
    /// The client's address.
    ip: Option<String>,
    /// The client's user agent.
    user_agent: Option<String>,
    /// When.
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    at: OffsetDateTime,
    /// The event's details.
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

/// A page of the audit log.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Newest first.
    events: Vec<AuditEntry>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    next_before: Option<i64>,
}

/// `GET /v1/admin/audit?before=&limit=`: newest first.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "admin",
    params(AuditQuery),
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "A page of the audit log", body = AuditPage),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
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
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Only users after this normalised username (`next_after` of the previous page).
    after: Option<String>,
    /// Users in the page (1–500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// A page of users.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UsersPage<'a> {
    /// By normalised username.
    users: Vec<AdminUserView<'a>>,
    /// Pass as `after` to get the next page; absent on the last page.
    next_after: Option<String>,
}

/// `GET /v1/admin/users?after=&limit=`: by normalised username.
#[utoipa::path(
    get,
    path = "/v1/admin/users",
    tag = "admin",
    params(UsersQuery),
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "A page of users", body = UsersPage),
        (status = 400, response = r::InvalidRequest),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn users(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(query): ApiQuery<UsersQuery>,
) -> Result<Response, ApiError> {
    let limit = page_size(query.limit)?;
    let users = state
        .core()
        .accounts
        .list_users(query.after.as_deref(), limit)
        .await?;
    let next_after = (users.len() == limit as usize)
        .then(|| users.last().map(|u| u.username.normalized().to_owned()))
        .flatten();
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let mfa = state.core().mfa_factors.statuses(&ids).await?;
    Ok(Json(UsersPage {
        users: users
            .iter()
            .zip(mfa)
            .map(|(user, mfa)| AdminUserView::new(user, mfa))
            .collect(),
        next_after,
    })
    .into_response())
}

fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found())
}

/// The id of an existing user named by `raw`; 404 for anything else.
async fn existing_user(state: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    let id = user_id(raw)?;
    state
        .core()
        .accounts
        .user(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(id)
}

/// `POST /v1/admin/users/{id}/disable`: blocks sign-in and revokes every session.
#[utoipa::path(
    post,
    path = "/v1/admin/users/{id}/disable",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Disabled; every session of the user is revoked"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 404, response = r::NotFound),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn disable(
    State(state): State<AppState>,
    Client(client): Client,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    set_disabled(&state, &client, &id, true).await
}

/// `POST /v1/admin/users/{id}/enable`: allows sign-in again.
#[utoipa::path(
    post,
    path = "/v1/admin/users/{id}/enable",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Enabled"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 404, response = r::NotFound),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
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
#[utoipa::path(
    delete,
    path = "/v1/admin/users/{id}/sessions",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Every session of the user is revoked"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 404, response = r::NotFound),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Client(client): Client,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = existing_user(&state, &id).await?;
    state
        .core()
        .user_sessions
        .revoke_all(id, None, &client, "admin")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/admin/users/{id}/mfa`: removes every second factor of the
/// user (TOTP, its recovery codes and passkeys), so the password alone signs in and
/// the user can enrol again; audited as `mfa.reset`. The user's sessions
/// are left alone.
#[utoipa::path(
    delete,
    path = "/v1/admin/users/{id}/mfa",
    tag = "admin",
    params(("id" = String, Path, description = "The user's id (a UUID)")),
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "The user has no second factor any more (or had none)"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 404, response = r::NotFound),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn reset_mfa(
    State(state): State<AppState>,
    Client(client): Client,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = existing_user(&state, &id).await?;
    state.core().mfa_factors.reset(id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signing key as administrators see it (never its private part).
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Key id (the JWT header's `kid`).
    kid: String,
    /// `EdDSA`, `ES256`, `RS256` or `HS256`.
    algorithm: &'static str,
    /// `access`, or `id_token` for the RS256 key that signs only ID tokens.
    purpose: &'static str,
    /// Whether it signs new tokens.
    current: bool,
    /// When it was made.
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    created_at: OffsetDateTime,
    /// When a newer key replaced it.
    #[serde(with = "time::serde::rfc3339::option")]
    retired_at: Option<OffsetDateTime>,
    /// When it leaves the key set (the last token it signed has expired).
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
#[utoipa::path(
    get,
    path = "/v1/admin/keys",
    tag = "admin",
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The signing keys", body = Vec<KeyView>),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn keys(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let keys = state.core().signing_keys.list().await?;
    Ok(Json(keys.iter().map(KeyView::from).collect()))
}

/// `POST /v1/admin/keys/rotate`: a new signing key becomes current; the old
/// one stays in the JWKS until the tokens it signed have expired.
#[utoipa::path(
    post,
    path = "/v1/admin/keys/rotate",
    tag = "admin",
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 200, description = "The new current key", body = KeyView),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn rotate_keys(
    State(state): State<AppState>,
    Client(client): Client,
    _admin: Admin,
) -> Result<Json<KeyView>, ApiError> {
    let key = state.core().signing_keys.rotate(&client).await?;
    Ok(Json(KeyView::from(&key)))
}
