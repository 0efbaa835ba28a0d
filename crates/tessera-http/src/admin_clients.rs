//! The administration of OAuth clients: `POST/GET /v1/admin/clients`,
//! `DELETE /v1/admin/clients/{id}` (which ends every session the client holds).

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde::{Deserialize, Serialize};
use tessera_core::oauth_client::OAuthClient;
use tessera_core::oauth_clients::NewClient;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Admin, Client};
use crate::input::{ApiPath, Input};
use crate::openapi::responses as r;
use crate::problem::ApiError;
use crate::problem::ProblemBody as Problem;
use crate::state::AppState;

/// `POST /v1/admin/clients` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// The name users see on the consent page and their account page.
    name: String,
    /// The redirect URIs an authorization may name (exact match).
    redirect_uris: Vec<String>,
    /// A public client (SPA, mobile) has no secret.
    public: bool,
    /// Where `/v1/logout` may send the browser back to.
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// A first-party client: no consent page, and its tokens may manage the account.
    #[serde(default)]
    skip_consent: bool,
    /// The ID tokens' algorithm (default RS256).
    id_token_signed_response_alg: Option<String>,
}

/// A client as administrators see it (never its secret's hash).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// The client's id.
    client_id: Uuid,
    /// Its name.
    name: String,
    /// Its redirect URIs.
    redirect_uris: Vec<String>,
    /// Its post-logout redirect URIs.
    post_logout_redirect_uris: Vec<String>,
    /// Whether it is public (no secret).
    public: bool,
    /// `none` (public) or `client_secret_basic` (`client_secret_post` is accepted too).
    token_endpoint_auth_method: &'static str,
    /// Whether it is first-party.
    skip_consent: bool,
    /// The ID tokens' algorithm, when not the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_signed_response_alg: Option<&'static str>,
    /// When it was registered.
    #[serde(serialize_with = "tessera_core::rfc3339::serialize")]
    created_at: OffsetDateTime,
}

impl From<&OAuthClient> for ClientView {
    fn from(c: &OAuthClient) -> Self {
        Self {
            client_id: c.id,
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            public: c.public,
            token_endpoint_auth_method: if c.public {
                "none"
            } else {
                "client_secret_basic"
            },
            skip_consent: c.skip_consent,
            id_token_signed_response_alg: c.id_token_alg.map(|a| a.as_str()),
            created_at: c.created_at,
        }
    }
}

/// The registration answer: the view and, once, the secret.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RegisteredClient)]
struct Registered {
    #[serde(flatten)]
    client: ClientView,
    /// A confidential client's secret: shown this once, stored hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// `POST /v1/admin/clients` → 201 `{client_id, client_secret?, ...}`.
#[utoipa::path(
    post,
    path = "/v1/admin/clients",
    operation_id = "register_client",
    tag = "admin",
    request_body = ClientRequest,
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "Registered", body = Registered,
            headers(("Cache-Control" = String, description = "`no-store`: the secret is shown once"))),
        (status = 400, description = "Metadata the rules refuse (`invalid-client-metadata`, with the reason), or an unreadable body (`invalid-request`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 413, response = r::BodyTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    Client(by): Client,
    _admin: Admin,
    input: Result<Input<ClientRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let req = input?.value;
    let (client, secret) = state
        .core()
        .clients
        .register(
            NewClient {
                name: req.name,
                redirect_uris: req.redirect_uris,
                post_logout_redirect_uris: req.post_logout_redirect_uris,
                public: req.public,
                skip_consent: req.skip_consent,
                id_token_signed_response_alg: req.id_token_signed_response_alg,
            },
            &by,
        )
        .await?;
    let body = Registered {
        client: ClientView::from(&client),
        client_secret: secret.map(|s| s.expose()),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    // The secret is shown once: no cache may keep it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /v1/admin/clients`: every client, oldest first.
#[utoipa::path(
    get,
    path = "/v1/admin/clients",
    operation_id = "list_clients",
    tag = "admin",
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The OAuth clients", body = Vec<ClientView>),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<ClientView>>, ApiError> {
    let clients = state.core().clients.list().await?;
    Ok(Json(clients.iter().map(ClientView::from).collect()))
}

/// `DELETE /v1/admin/clients/{id}` → 204; every session it holds ends.
#[utoipa::path(
    delete,
    path = "/v1/admin/clients/{id}",
    operation_id = "remove_client",
    tag = "admin",
    params(("id" = String, Path, description = "The client's id (a UUID)")),
    security(("admin_token" = []), ("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 204, description = "Removed; every session it held is revoked"),
        (status = 401, response = r::Unauthenticated),
        (status = 403, response = r::AdminRefused),
        (status = 404, response = r::NotFound),
        (status = 503, response = r::Unavailable),
        (status = "default", response = r::OtherProblem),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    Client(by): Client,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    state.core().clients.remove(id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}
