//! Extractors that turn hostile input into typed values or a problem+json
//! 4xx: request bodies (JSON or HTML form), query strings and path segments.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use http::header;
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::body::{BodyFormat, body_format, decode_form, decode_json, read};
use crate::middleware::form_token::DecodedForm;
use crate::problem::{ApiError, ProblemKind};

/// A request body decoded from JSON or from an HTML form into `T`.
///
/// Empty, malformed, wrongly typed bodies, bodies with NUL characters and
/// unknown media types are refused with a 4xx problem; bodies over
/// [`crate::body::MAX_BODY_BYTES`] with 413.
#[derive(Debug)]
pub struct Input<T> {
    /// The decoded value.
    pub value: T,
    /// Which encoding the client used (forms get redirects, JSON gets JSON).
    pub format: BodyFormat,
}

impl<S, T> FromRequest<S> for Input<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(mut req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let format = body_format(req.headers().get(header::CONTENT_TYPE));
        if format == Some(BodyFormat::Form)
            && let Some(DecodedForm(form)) = req.extensions_mut().remove::<DecodedForm>()
        {
            return Ok(Self {
                value: into_typed(form)?,
                format: BodyFormat::Form,
            });
        }
        let bytes = read(req.into_body()).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        let format = format.ok_or_else(|| {
            ApiError::new(
                ProblemKind::UnsupportedMediaType,
                "send application/json or application/x-www-form-urlencoded",
            )
        })?;
        let value = match format {
            BodyFormat::Json => decode_json(&bytes)?,
            BodyFormat::Form => decode_form(&bytes)?,
        };
        Ok(Self {
            value: into_typed(value)?,
            format,
        })
    }
}

/// Turns a decoded body into `T`, refusing NUL characters anywhere.
pub fn into_typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if contains_nul(&value) {
        return Err(ApiError::bad_request(
            "text fields must not contain NUL characters",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::bad_request(inner.to_string())
        } else {
            ApiError::bad_request(format!("`{path}`: {inner}"))
        }
    })
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// A boolean that also accepts the strings HTML forms send (`on`, `true`,
/// `1`, and `false`, `0`, empty).
pub fn form_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Bool(bool),
        Text(String),
    }
    match Loose::deserialize(deserializer)? {
        Loose::Bool(b) => Ok(b),
        Loose::Text(t) => match t.as_str() {
            "on" | "true" | "1" | "yes" => Ok(true),
            "off" | "false" | "0" | "no" | "" => Ok(false),
            _ => Err(serde::de::Error::custom("expected a boolean")),
        },
    }
}

/// A query string decoded into `T`, or a 400 problem.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Path parameters decoded into `T`, or a 400 problem.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| Self(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_escapes_and_refuse_repeats_and_bad_utf8() {
        let v = decode_form(b"a=1+2&b=%C3%A9&c").ok();
        assert_eq!(v, Some(serde_json::json!({"a": "1 2", "b": "é", "c": ""})));
        assert!(decode_form(b"a=1&a=2").is_err());
        assert!(decode_form(b"a=%FF").is_err());
        assert!(decode_form(b"a=%G1").is_err());
        assert!(decode_form(b"a=%4").is_err());
        assert!(decode_form(&[b'a', b'=', 0xFF]).is_err());
    }

    #[test]
    fn nul_anywhere_is_found() {
        assert!(contains_nul(
            &serde_json::json!({"a": ["x", {"b": "y\u{0}"}]})
        ));
        assert!(contains_nul(&serde_json::json!({"a\u{0}": 1})));
        assert!(!contains_nul(&serde_json::json!({"a": ["x", {"b": "y"}]})));
    }

    #[test]
    fn media_types_are_recognised() {
        let h = |s: &'static str| http::HeaderValue::from_static(s);
        assert_eq!(
            body_format(Some(&h("application/json; charset=utf-8"))),
            Some(BodyFormat::Json)
        );
        assert_eq!(
            body_format(Some(&h("Application/JSON"))),
            Some(BodyFormat::Json)
        );
        assert_eq!(
            body_format(Some(&h("application/merge-patch+json"))),
            Some(BodyFormat::Json)
        );
        assert_eq!(
            body_format(Some(&h("application/x-www-form-urlencoded"))),
            Some(BodyFormat::Form)
        );
        assert_eq!(body_format(Some(&h("text/plain"))), None);
        assert_eq!(
            body_format(Some(&h("multipart/form-data; boundary=x"))),
            None
        );
        assert_eq!(body_format(None), None);
    }
}
