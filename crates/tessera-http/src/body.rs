//! Request bodies as bytes become JSON values: the media types taken, the
//! size limit, and strict decoders for JSON objects and HTML forms. Shared
//! by the `Input` extractor and the form-token middleware, which must read
//! bodies the same way.

use serde_json::{Map, Value};

use crate::problem::ApiError;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole body, refused with 413 past [`MAX_BODY_BYTES`] (read no
/// further than that) and 400 if it cannot be read.
pub async fn read(body: axum::body::Body) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::body_too_large()),
        Err(_) => Err(ApiError::bad_request("the request body could not be read")),
    }
}

/// The media types a body may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json` or any `+json` type.
    Json,
    /// `application/x-www-form-urlencoded`, as HTML forms send.
    Form,
}

/// The body format named by a `Content-Type` header, if it is one we take.
pub fn body_format(content_type: Option<&http::HeaderValue>) -> Option<BodyFormat> {
    let value = content_type?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Some(BodyFormat::Json)
    } else if essence == "application/x-www-form-urlencoded" {
        Some(BodyFormat::Form)
    } else {
        None
    }
}

/// Parses a JSON body that must be an object.
pub fn decode_json(bytes: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let reason = match e.classify() {
            serde_json::error::Category::Eof => "the JSON body ends too early".to_owned(),
            _ => format!("the body is not valid JSON: {e}"),
        };
        ApiError::bad_request(reason)
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the JSON body must be an object"));
    }
    Ok(value)
}

/// A form becomes a JSON object of strings; a repeated field is refused
/// rather than guessed at.
pub fn decode_form(bytes: &[u8]) -> Result<Value, ApiError> {
    // serde_urlencoded decodes percent-escapes lossily; refuse invalid UTF-8 instead.
    let pairs: Vec<(String, String)> = form_pairs(bytes)?;
    let mut map = Map::new();
    for (key, value) in pairs {
        if map.insert(key.clone(), Value::String(value)).is_some() {
            return Err(ApiError::bad_request(format!(
                "the form field `{key}` is repeated"
            )));
        }
    }
    Ok(Value::Object(map))
}

fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("the form body is not valid UTF-8"))?;
    let mut pairs = Vec::new();
    for part in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((percent_decode(key)?, percent_decode(value)?));
    }
    Ok(pairs)
}

fn percent_decode(raw: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request("the form body has an invalid escape or invalid UTF-8");
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes
                    .next()
                    .and_then(|c| (c as char).to_digit(16))
                    .ok_or_else(bad)?;
                let lo = bytes
                    .next()
                    .and_then(|c| (c as char).to_digit(16))
                    .ok_or_else(bad)?;
                out.push(u8::try_from(hi * 16 + lo).map_err(|_| bad())?);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}
