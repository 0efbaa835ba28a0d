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
pub mod cors;
pub mod csrf;
pub mod health;
pub mod host;
pub mod input;
pub mod my_sessions;
pub mod oauth;
pub mod problem;
pub mod revocations;
pub mod state;
pub mod views;
pub mod well_known;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use http::{HeaderName, HeaderValue, StatusCode, header};

use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::cors::CrossOriginLayer;
use crate::host::HostCheckLayer;
pub use state::{AppState, HttpConfig};

/// Longest a request may take (a slow upload included) before the client gets a 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Paths answered whatever the request's `Host`: load balancers probe
/// nodes by address, and these reveal nothing.
const ANY_HOST_PATHS: &[&str] = &["/healthz", "/readyz"];

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
        // Set before the layers so that preflight OPTIONS, which no handler
        // takes, still passes through the CORS layer.
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(CrossOriginLayer::new(&state.http().origins.allowed));
    Router::new()
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
        // Outermost first, in one `layer` call: axum boxes the stack at every
        // call and clones each box per request, so one stack costs one clone.
        .layer(
            ServiceBuilder::new()
                .option_layer(hsts.then(|| {
                    SetResponseHeaderLayer::if_not_present(
                        header::STRICT_TRANSPORT_SECURITY,
                        HeaderValue::from_static(HSTS),
                    )
                }))
                .layer(SetRequestIdLayer::x_request_id(RequestIds::new()))
                .layer(TraceLayer::new_for_http())
                .layer(PropagateRequestIdLayer::x_request_id())
                // Nothing the API answers is meant to be cached, framed,
                // sniffed or to leak a referrer; handlers may say
                // otherwise. Outside the panic guard, so a 500 carries them too.
                .layer(default_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .layer(default_header(header::REFERRER_POLICY, "no-referrer"))
                .layer(default_header(header::X_FRAME_OPTIONS, "DENY"))
                .layer(default_header(header::CACHE_CONTROL, "no-store"))
                .layer(default_header(
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; frame-ancestors 'none'",
                ))
                .layer(CatchPanicLayer::custom(|_| {
                    problem::ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "Internal error",
                        "the server failed; the cause is in its log",
                    )
                    .into_response()
                }))
                .layer(HostCheckLayer::new(
                    state.http().origins.hosts.clone(),
                    ANY_HOST_PATHS,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    request_timeout,
                ))
                .layer(DefaultBodyLimit::max(input::MAX_BODY_BYTES))
                .layer(middleware::from_fn(csrf::stash_form_token)),
        )
        .with_state(state)
}

/// Request ids: a random per-process prefix and a counter. Unique across
/// nodes and restarts without a trip to the OS random source per request
/// (a v4 UUID each cost a system call).
#[derive(Clone)]
struct RequestIds {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        let mut seed = [0u8; 8];
        // Uniqueness, not secrecy: a clock-derived prefix will do if the
        // OS random source fails.
        let prefix = match tessera_core::secret::fill_random(&mut seed) {
            Ok(()) => u64::from_le_bytes(seed),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        Self {
            prefix,
            next: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:016x}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Sets a header on every response that does not carry it already.
fn default_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}
