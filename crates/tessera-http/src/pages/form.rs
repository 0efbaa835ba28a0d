//! Form posts of the pages, decoded as strictly as the API's (size limit,
//! valid UTF-8 and escapes, no repeated field, no NUL), but refused with an
//! error page instead of problem+json. The pages read their bodies here
//! only (the router's form-token middleware leaves them alone), the
//! `csrf_token` field included.

use axum::extract::{FromRequest, Request};
use axum::response::Response;
use http::header;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::page_error::PageError;
use crate::body::{BodyFormat, body_format, decode_form, read};
use crate::input::into_typed;
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;

/// An HTML form post decoded into `T`.
#[derive(Debug)]
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let back = back_link(request.uri().path());
        match decode(request).await.and_then(into_typed) {
            Ok(form) => Ok(PageForm(form)),
            Err(e) => Err(refused(&e, back, state)),
        }
    }
}

/// The error page for a form that could not be read, linking back to the
/// form that was sent (which the pages can show again).
pub fn refused(e: &ApiError, back: &'static str, state: &AppState) -> Response {
    PageError::from_api(e)
        .back_to(back, "Back to the form")
        .render(state)
}

/// Where the error page of a post to `path` links back to.
pub fn back_link(path: &str) -> &'static str {
    match path {
        "/login" => "/login",
        "/register" => "/register",
        _ => "/account",
    }
}

/// The form's fields, decoded but not yet typed.
pub async fn decode(request: Request) -> Result<Value, ApiError> {
    if body_format(request.headers().get(header::CONTENT_TYPE)) != Some(BodyFormat::Form) {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "the pages take HTML forms (application/x-www-form-urlencoded) only",
        ));
    }
    let bytes = read(request.into_body()).await?;
    decode_form(&bytes)
}
