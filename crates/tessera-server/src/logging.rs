//! The log stream: standard error, filtered by `RUST_LOG` if set, else by
//! the `log` key, as text or (`log_format = "json"`) one JSON object per
//! line. A line logged while a request is handled names it: `request_id`,
//! `method` and `route` (see `tessera_http::middleware::request_log`),
//! appended to the text line, or as fields of the JSON object beside the
//! event's own.

use std::fmt;

use tessera_http::middleware::request_log::current;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogFormat, Settings};

/// Installs the subscriber `settings` asks for (once per process).
pub fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&settings.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .map_event_format(|format| WithRequest {
                inner: format,
                json: false,
            })
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .map_event_format(|format| WithRequest {
                inner: format,
                json: true,
            })
            .try_init(),
    };
}

/// A line format that names the request being handled, if any.
struct WithRequest<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithRequest<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        current(|request| {
            let Some(request) = request else {
                return self.inner.format_event(ctx, writer.by_ref(), event);
            };
            let mut line = String::new();
            self.inner
                .format_event(ctx, Writer::new(&mut line), event)?;
            let line = line.trim_end_matches('\n');
            if self.json {
                writeln!(
                    writer,
                    "{}",
                    with_json_fields(
                        line,
                        [
                            ("request_id", request.request_id()),
                            ("method", request.method()),
                            ("route", request.route()),
                        ]
                    )
                )
            } else {
                writeln!(
                    writer,
                    "{line} request_id={} method={} route={}",
                    request.request_id(),
                    request.method(),
                    request.route()
                )
            }
        })
    }
}

/// `object` (one JSON object) with text `fields` added.
fn with_json_fields(object: &str, fields: [(&str, &str); 3]) -> String {
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    let fields = fields
        .iter()
        .map(|(name, value)| format!("{}:{}", quoted(name), quoted(value)))
        .collect::<Vec<_>>()
        .join(",");
    match object.strip_suffix('}') {
        Some(body) if body.ends_with('{') => format!("{body}{fields}}}"),
        Some(body) => format!("{body},{fields}}}"),
        // Not an object: keep it, and say whose it is beside it.
        None => format!("{{\"line\":{},{fields}}}", quoted(object)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_fields_join_the_json_object() {
        let request = [
            ("request_id", "id-\"1\""),
            ("method", "GET"),
            ("route", "unmatched"),
        ];
        let line = with_json_fields(r#"{"message":"x"}"#, request);
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(parsed.get("message"), Some(&"x".into()), "{line}");
        assert_eq!(parsed.get("request_id"), Some(&"id-\"1\"".into()), "{line}");
        assert_eq!(parsed.get("route"), Some(&"unmatched".into()), "{line}");
        let empty = with_json_fields("{}", request);
        assert!(
            serde_json::from_str::<serde_json::Value>(&empty).is_ok(),
            "{empty}"
        );
    }
}
