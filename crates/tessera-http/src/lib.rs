//! Tessera's HTTP API: the axum router, its extractors (cookie, bearer,
//! bodies), CSRF defence and problem+json errors.
//!
//! [`app`] builds the whole router from an [`AppState`]; the binary binds it
//! to a listener.

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod cookie;
pub mod cookie_session;
pub mod csrf;
pub mod health;
pub mod input;
pub mod my_sessions;
pub mod oauth;
pub mod problem;
pub mod revocations;
pub mod state;
pub mod views;
pub mod well_known;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use state::{AppState, HttpConfig};

/// Longest a request may take (a slow upload included) before the client gets a 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// HSTS for two years, subdomains included, as the HSTS preload list asks.
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// The whole HTTP API.
pub fn app(state: AppState) -> Router {
    let hsts = state.http().hsts;
    let request_timeout = state.http().request_timeout.unwrap_or(REQUEST_TIMEOUT);
    // Browsers on the allowed origins (SPAs) may call the token endpoints and
    // /v1/me* across origins; nobody else gets CORS headers.
    let cross_origin = Router::new()
        .route("/v1/me", get(accounts::me))
        .route("/v1/me/password", post(accounts::change_password))
        .route(
            "/v1/me/sessions",
            get(my_sessions::list).delete(my_sessions::revoke_many),
        )
        .route("/v1/me/sessions/{id}", delete(my_sessions::revoke_one))
        .route("/v1/token", post(oauth::token))
        .route("/v1/token/revoke", post(oauth::revoke))
        .route("/v1/token/introspect", post(oauth::introspect))
        // Set before the layer so that preflight OPTIONS, which no handler
        // takes, still passes through the CORS layer.
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(cors(&state.http().origins.allowed))
        .layer(middleware::map_response(no_credentials_without_origin));
    let router = Router::new()
        .merge(cross_origin)
        .route("/v1/users", post(accounts::register))
        .route(
            "/v1/session",
            post(cookie_session::sign_in)
                .get(cookie_session::current)
                .delete(cookie_session::sign_out),
        )
        .route("/v1/revocations", get(revocations::revocations))
        .route("/.well-known/jwks.json", get(well_known::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(well_known::openid_configuration),
        )
        .route("/v1/admin/keys", get(admin::keys))
        .route("/v1/admin/keys/rotate", post(admin::rotate_keys))
        .route("/v1/admin/audit", get(admin::audit))
        .route("/v1/admin/users", get(admin::users))
        .route("/v1/admin/users/{id}/disable", post(admin::disable))
        .route("/v1/admin/users/{id}/enable", post(admin::enable))
        .route(
            "/v1/admin/users/{id}/sessions",
            delete(admin::revoke_sessions),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(middleware::from_fn(csrf::stash_form_token))
        .layer(DefaultBodyLimit::max(input::MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(middleware::from_fn(security_headers))
        .layer(CatchPanicLayer::custom(|_| {
            problem::ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the server failed; the cause is in its log",
            )
            .into_response()
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state);
    if hsts {
        router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        ))
    } else {
        router
    }
}

/// CORS for `allowed` origins only, credentials included (so never `*`).
fn cors(allowed: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = allowed
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(csrf::CSRF_HEADER),
        ])
        .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
        .max_age(Duration::from_secs(600))
}

/// The CORS layer announces credentials to every origin; only an allowed
/// one (answered with `Access-Control-Allow-Origin`) may see that.
async fn no_credentials_without_origin(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
    }
    response
}

/// Headers every response carries. Nothing the API answers is meant to be
/// cached, framed, sniffed or to leak a referrer.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}
