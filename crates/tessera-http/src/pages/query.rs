//! The query strings pages read (`return_to`, which notice to show), read
//! leniently: a malformed query is ignored as a whole (the page shows as if
//! it had none) instead of costing the visitor an error page.

use http::Uri;
use serde_json::Value;

use crate::body::decode_form;

/// The query of a page request.
#[derive(Debug, Default)]
pub struct PageQuery(serde_json::Map<String, Value>);

impl PageQuery {
    /// The query of `uri`; empty if absent or malformed (bad escapes, bad
    /// UTF-8, a repeated name).
    pub fn of(uri: &Uri) -> Self {
        let parsed = uri
            .query()
            .and_then(|q| decode_form(q.as_bytes()).ok())
            .and_then(|v| match v {
                Value::Object(map) => Some(map),
                _ => None,
            });
        Self(parsed.unwrap_or_default())
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_queries_read_as_empty() {
        let q = |s: &'static str| PageQuery::of(&Uri::from_static(s));
        assert_eq!(
            q("/login?return_to=%2Fx&notice=a").get("return_to"),
            Some("/x")
        );
        assert_eq!(
            q("/login?return_to=%2Fx&return_to=%2Fy").get("return_to"),
            None
        );
        assert_eq!(q("/login?return_to=%FF").get("return_to"), None);
        assert_eq!(q("/login?return_to=%").get("return_to"), None);
        assert_eq!(q("/login").get("return_to"), None);
    }
}
