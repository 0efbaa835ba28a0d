//! Form posts of the pages, decoded as strictly as the API's (size limit,
//! valid UTF-8 and escapes, no repeated field, no NUL), but refused with an
//! error page instead of problem+json.

use axum::extract::{FromRequest, Request};
use axum::response::Response;
use bytes::Bytes;
use http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::page_error::PageError;
use crate::body::{BodyFormat, body_format, decode_form};
use crate::input::into_typed;
use crate::middleware::form_token::DecodedForm;
use crate::problem::ApiError;
use crate::state::AppState;

/// An HTML form post decoded into `T`.
#[derive(Debug)]
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        // Back to the form that was sent, which the pages can show again.
        let back = match request.uri().path() {
            "/login" => "/login",
            "/register" => "/register",
            _ => "/account",
        };
        decode(request, state).await.map(PageForm).map_err(|e| {
            PageError::from_api(&e)
                .back_to(back, "Back to the form")
                .render(state)
        })
    }
}

async fn decode<T: DeserializeOwned>(
    mut request: Request,
    state: &AppState,
) -> Result<T, ApiError> {
    if body_format(request.headers().get(header::CONTENT_TYPE)) != Some(BodyFormat::Form) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "the pages take HTML forms (application/x-www-form-urlencoded) only",
        ));
    }
    // The CSRF middleware may have decoded the body already.
    if let Some(DecodedForm(form)) = request.extensions_mut().remove::<DecodedForm>() {
        return into_typed(form);
    }
    // Taken whole, so that the body limit the router set still applies.
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::body_too_large()
            } else {
                ApiError::bad_request("the form could not be read")
            }
        })?;
    into_typed(decode_form(&bytes)?)
}
