//! Tessera's HTTP API: the axum router, its extractors (cookie, bearer,
//! bodies), CSRF defence and problem+json errors; and the web pages
//! ([`pages`]) people sign in and manage their sessions with.
//!
//! [`app`] builds the whole router from an [`AppState`]; the binary binds it
//! to a listener.

pub mod accounts;
pub mod admin;
pub mod admin_clients;
pub mod allowed_hosts;
pub mod auth;
pub mod body;
pub mod cookie;
pub mod cookie_session;
pub mod csrf;
pub mod forward_auth;
pub mod health;
pub mod input;
pub mod json;
pub mod metrics;
pub mod middleware;
pub mod my_consents;
pub mod my_mfa;
pub mod my_sessions;
pub mod oauth;
pub mod openapi;
pub mod pages;
pub mod passkeys;
pub mod problem;
pub mod revocations;
pub mod state;
pub mod userinfo;
pub mod views;
pub mod well_known;

use std::time::Duration;

use axum::Router;
use tower::Layer as _;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middleware::cors::CrossOrigin;
use crate::middleware::form_token::{FormToken, FormTokenLayer};
use crate::middleware::front_door::{FrontDoor, FrontDoorConfig, FrontDoorLayer};
use crate::middleware::host::HostCheck;
use crate::middleware::request_id::RequestIds;
use crate::middleware::request_metrics::RequestMetrics;
use crate::middleware::route_table::RouteTable;
use crate::middleware::security_headers::SecurityHeaders;
pub use state::{AppState, ForwardAuthConfig, HttpConfig};

/// Longest a request may take (a slow upload included) before the client gets a 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Paths answered whatever the request's `Host`: load balancers probe
/// nodes by address, and Prometheus scrapes them so; these reveal nothing
/// (`/metrics` only to its token).
const ANY_HOST_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Path prefixes whose form bodies are not searched for a CSRF token: the
/// OAuth endpoints never read cookies, and the web pages read their forms
/// (token included) themselves, so that even a refused body gets a page.
const OWN_FORM_PATHS: &[&str] = &[
    "/v1/token",
    "/v1/authorize",
    "/v1/logout",
    "/login",
    "/register",
    "/account",
    "/logout",
];

/// The whole HTTP API: the router behind the front door.
pub type App = FrontDoor<FormToken<Router>>;

/// The whole HTTP API. Fails only if two routes clash, a bug that every
/// test starting a server catches.
pub fn app(state: AppState) -> Result<App, String> {
    let (router, front_door) = app_parts(state)?;
    Ok(front_door.layer(FormTokenLayer::new(OWN_FORM_PATHS).layer(router)))
}

/// The router and the front door [`app`] puts around it (with the form-token
/// middleware between the two), apart, for a test that gives the router a
/// fallback of its own.
pub fn app_parts(state: AppState) -> Result<(Router, FrontDoorLayer), String> {
    // Browsers on the allowed origins (SPAs) may call the token endpoints and
    // /v1/me* across origins; nobody else gets CORS headers.
    let cross_origin = OpenApiRouter::new()
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::change_password))
        .routes(routes!(my_sessions::list, my_sessions::revoke_many))
        .routes(routes!(my_sessions::revoke_one))
        .routes(routes!(my_consents::list))
        .routes(routes!(my_consents::revoke))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::start_registration))
        .routes(routes!(passkeys::finish_registration))
        .routes(routes!(passkeys::rename, passkeys::remove))
        .routes(routes!(my_mfa::status))
        .routes(routes!(my_mfa::enrol_totp, my_mfa::disable_totp))
        .routes(routes!(my_mfa::confirm_totp))
        .routes(routes!(my_mfa::regenerate_recovery_codes))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::introspect))
        .routes(routes!(userinfo::userinfo));
    // A method no handler takes is a 405 problem here too (the front door
    // answers these routes' CORS preflights itself).
    let cross_origin = openapi::map_router(cross_origin, |router| {
        router.method_not_allowed_fallback(problem::method_not_allowed)
    });
    let cross_origin_api = cross_origin.get_openapi().clone();
    let (openapi_route, openapi_document) = openapi::route();
    let (router, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(cross_origin)
        .merge(pages::routes())
        .merge(openapi_route)
        .routes(routes!(accounts::register))
        .routes(routes!(
            cookie_session::sign_in,
            cookie_session::current,
            cookie_session::sign_out
        ))
        .routes(routes!(passkeys::start_sign_in))
        .routes(routes!(passkeys::start_second_factor))
        .routes(routes!(passkeys::finish_sign_in))
        .routes(routes!(passkeys::finish_sign_in_for_tokens))
        .routes(routes!(cookie_session::complete_mfa))
        .routes(routes!(revocations::revocations))
        .routes(routes!(forward_auth::forward))
        .routes(routes!(well_known::jwks))
        .routes(routes!(well_known::openid_configuration))
        .routes(routes!(well_known::oauth_authorization_server))
        .routes(routes!(admin::keys))
        .routes(routes!(admin::rotate_keys))
        .routes(routes!(admin::audit))
        .routes(routes!(admin_clients::list, admin_clients::register))
        .routes(routes!(admin_clients::remove))
        .routes(routes!(admin::users))
        .routes(routes!(admin::disable))
        .routes(routes!(admin::enable))
        .routes(routes!(admin::revoke_sessions))
        .routes(routes!(admin::reset_mfa))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .split_for_parts();
    // Made before `finish`, which leaves the pages out of the document.
    let routes = RouteTable::new(&api, &cross_origin_api)?;
    openapi_document.fill(&openapi::finish(api, &state));
    let front_door = FrontDoorLayer::new(FrontDoorConfig {
        metrics: RequestMetrics::new(state.core().context.metrics_handle(), &routes),
        routes,
        ids: RequestIds::default(),
        hosts: HostCheck::new(state.http().origins.hosts.clone(), ANY_HOST_PATHS),
        cross_origin: CrossOrigin::new(&state.http().origins.allowed),
        headers: SecurityHeaders::new(state.http().hsts),
        draining: state.http().draining.clone(),
        timeout: state.http().request_timeout.unwrap_or(REQUEST_TIMEOUT),
    });
    let router = router
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .with_state(state);
    Ok((router, front_door))
}
