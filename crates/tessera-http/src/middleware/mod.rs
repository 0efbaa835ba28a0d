//! The middleware around every route, one concern per file. `app` stacks
//! them in one `ServiceBuilder` and hands each the paths it treats apart,
//! so no middleware knows a route by heart.

pub mod cors;
pub mod drain;
pub mod edit_response;
pub mod form_token;
pub mod host;
pub mod request_id;
pub mod request_log;
pub mod request_metrics;
pub mod security_headers;
