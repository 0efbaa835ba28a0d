//! The administration of OAuth clients: `POST/GET /v1/admin/clients`,
//! `DELETE /v1/admin/clients/{id}` (which ends every session the client holds).

use axum::Json;
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
use crate::problem::ApiError;
use crate::state::AppState;

/// `POST /v1/admin/clients` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    name: String,
    redirect_uris: Vec<String>,
    public: bool,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    skip_consent: bool,
    id_token_signed_response_alg: Option<String>,
}

/// A client as administrators see it (never its secret's hash).
#[derive(Serialize)]
pub struct ClientView {
    client_id: Uuid,
    name: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    public: bool,
    token_endpoint_auth_method: &'static str,
    skip_consent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_signed_response_alg: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339")]
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
#[derive(Serialize)]
struct Registered {
    #[serde(flatten)]
    client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// `POST /v1/admin/clients` → 201 `{client_id, client_secret?, ...}`.
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
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<ClientView>>, ApiError> {
    let clients = state.core().clients.list().await?;
    Ok(Json(clients.iter().map(ClientView::from).collect()))
}

/// `DELETE /v1/admin/clients/{id}` → 204; every session it holds ends.
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
