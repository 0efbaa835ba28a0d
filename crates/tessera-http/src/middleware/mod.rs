//! The middleware around the router, one concern per file: the front door
//! ([`front_door`]) applies them all in one service, and `app` hands each
//! the paths it treats apart, so no middleware knows a route by heart.

pub mod cors;
pub mod drain;
pub mod form_token;
pub mod front_door;
pub mod host;
pub mod request_id;
pub mod request_log;
pub mod request_metrics;
pub mod route_table;
pub mod security_headers;
