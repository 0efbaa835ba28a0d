//! `GET /openapi.json`: the OpenAPI 3.1 document of every endpoint, made
//! from the same `#[utoipa::path]` definitions the router registers its
//! routes from ([`utoipa_axum::routes!`] in `app()`), so the two cannot
//! drift. This module holds what no handler owns: the document's frame
//! (title, tags, security schemes), the finishing touches known only at run
//! time (version, server URL, cookie name), and serving it.

pub mod responses;

use std::sync::{Arc, OnceLock};

use axum::Extension;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, header};
use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Components, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::csrf::CSRF_HEADER;
use crate::problem::ApiError;
use crate::state::AppState;

/// Caches may keep the document briefly: it changes only with a new
/// version or configuration.
const CACHE: &str = "public, max-age=300";

/// Security scheme: the session cookie (its configured name is set by [`finish`]).
pub const SESSION_COOKIE: &str = "session_cookie";
/// Security scheme: the session's CSRF token, required beside the cookie on
/// every request but GET, HEAD and OPTIONS.
pub const CSRF_TOKEN: &str = "csrf_token";
/// Security scheme: an access token.
pub const BEARER: &str = "bearer";
/// Security scheme: the configured `admin_token`.
pub const ADMIN_TOKEN: &str = "admin_token";
/// Security scheme: the configured `introspection_secret`.
pub const INTROSPECTION_SECRET: &str = "introspection_secret";
/// Security scheme: the configured `metrics_token`.
pub const METRICS_TOKEN: &str = "metrics_token";
/// Security scheme: an OAuth client's id and secret (`client_secret_basic`).
pub const CLIENT_BASIC: &str = "client_basic";

/// The document's frame; the paths come from the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Tessera's HTTP API: accounts, cookie sessions, tokens (OAuth 2.1 and \
            OpenID Connect), the signed-in user's sessions and consents, administration, \
            what verifiers and reverse proxies use, operations, and the web pages.\n\n\
            Errors are `application/problem+json` (RFC 9457, schema `Problem`), except \
            the OAuth endpoints (`/v1/token*`), which answer RFC 6749 §5.2 errors \
            (schema `OAuthError`), and the web pages, which answer HTML.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    // Named by the shared responses, whichever operations use them.
    components(schemas(crate::problem::ProblemBody, crate::oauth::OAuthErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "accounts", description = "Registration and the signed-in user"),
        (name = "sessions", description = "Cookie sessions"),
        (name = "tokens", description = "OAuth 2.1 token endpoints (RFC 6749, 7009, 7662) and UserInfo"),
        (name = "me", description = "The signed-in user's sessions and consents"),
        (name = "admin", description = "Administration: the admin role or the admin token"),
        (name = "discovery", description = "Keys and server metadata"),
        (name = "verifiers", description = "For resource servers and reverse proxies"),
        (name = "operations", description = "Probes and this document"),
        (name = "pages", description = "The web pages (HTML, no JavaScript) and the OAuth browser endpoints"),
    ),
)]
pub struct ApiDoc;

/// The security schemes the operations name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Components::new);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        let schemes = [
            (
                SESSION_COOKIE,
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                    "__Host-tessera",
                    "The session cookie set by `POST /v1/session` or the sign-in page.",
                ))),
            ),
            (
                CSRF_TOKEN,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    CSRF_HEADER,
                    "The session's CSRF token (`csrf_token` of `GET /v1/session`), needed with \
                     the cookie on every request but GET, HEAD and OPTIONS; a form may send it \
                     as its `csrf_token` field instead.",
                ))),
            ),
            (
                BEARER,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some("An access token from `POST /v1/token`."))
                        .build(),
                ),
            ),
            (
                ADMIN_TOKEN,
                bearer("The `admin_token` from the configuration."),
            ),
            (
                INTROSPECTION_SECRET,
                bearer("The `introspection_secret` from the configuration."),
            ),
            (
                METRICS_TOKEN,
                bearer("The `metrics_token` from the configuration."),
            ),
            (
                CLIENT_BASIC,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Basic)
                        .description(Some(
                            "A confidential OAuth client's id and secret (`client_secret_basic`).",
                        ))
                        .build(),
                ),
            ),
        ];
        for (name, scheme) in schemes {
            components.add_security_scheme(name, scheme);
        }
        responses::register(components);
    }
}

/// The document as served: the version of this build, the configured
/// public URL as the server, and the configured cookie name.
pub fn finish(mut api: OpenApi, state: &AppState) -> OpenApi {
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let issuer = &state.core().context.config().tokens.issuer;
    api.servers = Some(vec![Server::new(issuer.trim_end_matches('/'))]);
    if let Some(SecurityScheme::ApiKey(ApiKey::Cookie(cookie))) = api
        .components
        .as_mut()
        .and_then(|c| c.security_schemes.get_mut(SESSION_COOKIE))
    {
        cookie.name = state.http().cookie.name.clone();
    }
    api
}

/// Where the serialised document waits for `GET /openapi.json`: filled
/// once the router holding every route (this one included) is complete.
#[derive(Clone, Default)]
pub struct Served(Arc<OnceLock<Bytes>>);

impl Served {
    /// Serialises the finished document for serving.
    pub fn fill(&self, api: &OpenApi) {
        match serde_json::to_vec(api) {
            Ok(json) => {
                let _ = self.0.set(Bytes::from(json));
            }
            Err(e) => tracing::error!(error = %e, "the OpenAPI document cannot be serialised"),
        }
    }
}

/// The route of `GET /openapi.json`, and where its document is to be put.
pub fn route() -> (OpenApiRouter<AppState>, Served) {
    let served = Served::default();
    let router = OpenApiRouter::new()
        .routes(routes!(document))
        .layer(Extension(served.clone()));
    (router, served)
}

/// The OpenAPI 3.1 document of this server's HTTP API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The document (OpenAPI 3.1)", content_type = "application/json",
            body = Object,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        (status = "default", response = responses::OtherProblem),
    ),
)]
pub async fn document(Extension(served): Extension<Served>) -> Response {
    match served.0.get() {
        Some(json) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static(CACHE)),
            ],
            json.clone(),
        )
            .into_response(),
        None => ApiError::internal().into_response(),
    }
}

/// `f` applied to the router of `router`, its document kept: for what
/// [`OpenApiRouter`] does not pass through (`method_not_allowed_fallback`).
pub fn map_router<S>(
    router: OpenApiRouter<S>,
    f: impl FnOnce(axum::Router<S>) -> axum::Router<S>,
) -> OpenApiRouter<S>
where
    S: Send + Sync + Clone + 'static,
{
    let (router, api) = router.split_for_parts();
    let mut mapped = OpenApiRouter::from(f(router));
    *mapped.get_openapi_mut() = api;
    mapped
}
