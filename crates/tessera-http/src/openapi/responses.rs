//! The responses many operations share, kept once under
//! `components/responses` and referenced from each operation
//! (`(status = 401, response = Unauthenticated)`): the JSON API's problems
//! (schema `Problem`, `application/problem+json`), the OAuth endpoints'
//! errors (schema `OAuthError`, RFC 6749 §5.2) and the pages' answers.

use utoipa::ToResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{
    Components, Content, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Schema, Type,
};

/// The media type of every problem (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What a shared response carries.
#[derive(Clone, Copy)]
enum Body {
    /// A `Problem`, as `application/problem+json`.
    Problem,
    /// An `OAuthError`, as `application/json`.
    OAuth,
    /// A page, as `text/html`.
    Html,
    /// Nothing.
    Empty,
}

/// Which headers a shared response names.
#[derive(Clone, Copy)]
enum Headers {
    None,
    /// `WWW-Authenticate: Bearer realm="tessera"` (401).
    Challenge,
    /// `Retry-After` in seconds (429, 503).
    RetryAfter,
    /// `Location` (redirects).
    Location,
}

fn header(schema_type: Type, description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(schema_type))
        .description(Some(description))
        .build()
}

fn build(description: &str, body: Body, headers: Headers) -> Response {
    let content = |schema: RefOr<Schema>| Content::new(Some(schema));
    let response = ResponseBuilder::new().description(description);
    let response = match body {
        Body::Problem => response.content(
            PROBLEM_JSON,
            content(Ref::from_schema_name("Problem").into()),
        ),
        Body::OAuth => response.content(
            "application/json",
            content(Ref::from_schema_name("OAuthError").into()),
        ),
        Body::Html => response.content(
            "text/html",
            content(ObjectBuilder::new().schema_type(Type::String).into()),
        ),
        Body::Empty => response,
    };
    let response = match headers {
        Headers::None => response,
        Headers::Challenge => response.header(
            "WWW-Authenticate",
            header(
                Type::String,
                "`Bearer realm=\"tessera\"` (with `error=\"insufficient_scope\"` on a 403 for an application's token)",
            ),
        ),
        Headers::RetryAfter => response.header(
            "Retry-After",
            header(Type::Integer, "Seconds to wait before trying again"),
        ),
        Headers::Location => response.header("Location", header(Type::String, "Where to go")),
    };
    response.build()
}

/// Declares the shared responses: a type per response (for
/// `response = Name` in `#[utoipa::path]`) and their registration, from
/// one list.
macro_rules! shared_responses {
    ($($name:ident: $body:ident, $headers:ident, $description:literal;)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'s> ToResponse<'s> for $name {
                fn response() -> (&'s str, RefOr<Response>) {
                    (
                        stringify!($name),
                        build($description, Body::$body, Headers::$headers).into(),
                    )
                }
            }
        )*

        /// Puts every shared response under `components/responses`.
        pub fn register(components: &mut Components) {
            $(
                let (name, response) = <$name as ToResponse>::response();
                components.responses.insert(name.to_owned(), response);
            )*
        }
    };
}

shared_responses! {
    InvalidRequest: Problem, None,
        "The body, query or path cannot be read or is refused (`invalid-request`; the `detail` says why).";
    Unauthenticated: Problem, Challenge,
        "No valid session cookie or bearer token (`unauthenticated`).";
    CsrfRefused: Problem, None,
        "A cookie-authenticated request from an origin not allowed (`foreign-origin`) or without its CSRF token (`csrf-token-missing`, `csrf-token-invalid`).";
    AccountRefused: Problem, Challenge,
        "A cookie-authenticated request failing the origin or CSRF checks (`foreign-origin`, `csrf-token-missing`, `csrf-token-invalid`), or the token of an application that is not first-party, which is for `/v1/userinfo` only (`insufficient-scope`).";
    AdminRefused: Problem, None,
        "The caller is not an administrator (`not-admin`), or a cookie-authenticated request failing the origin or CSRF checks.";
    VerifierRefused: Problem, None,
        "The bearer is neither the introspection secret nor an administrator's (`not-verifier`).";
    NotFound: Problem, None,
        "Nothing here (`not-found`).";
    BodyTooLarge: Problem, None,
        "The body is over 64 KiB (`body-too-large`).";
    UnsupportedMediaType: Problem, None,
        "The body is neither `application/json` nor `application/x-www-form-urlencoded` (`unsupported-media-type`).";
    RateLimited: Problem, RetryAfter,
        "Too many failed attempts from this address or at this account (`rate-limited`).";
    Unavailable: Problem, RetryAfter,
        "The data store cannot be reached (`store-unavailable`), or the password-hashing line is full (`busy`).";
    PasskeyNotAccepted: Problem, Challenge,
        "The passkey's answer proves no one (`passkey-not-accepted`): an unknown, expired or spent ceremony, a passkey not registered or not matching the user it names, a signature, challenge, origin or relying party that does not verify. Which one is not told.";
    PasskeysUnavailable: Problem, None,
        "Passkeys need `public_url` to name its host by a domain name (WebAuthn has no IP-address relying parties) (`passkeys-unavailable`).";
    OtherProblem: Problem, None,
        "Any other error, as a problem: 405 (`method-not-allowed`), 421 for a `Host` this server does not answer to (`unknown-host`), 500 (`internal`); and 408, without a body, when the request takes longer than the request timeout.";
    OAuthBadRequest: OAuth, None,
        "RFC 6749 §5.2: `invalid_request` (a field missing, malformed or repeated), `invalid_grant` (a wrong password, or a code or refresh token that is unknown, expired, used or replaced; at the MFA grant, a wrong or used code, or an `mfa_token` unknown, expired, used or from another address), `unsupported_grant_type`.";
    OAuthInvalidClient: OAuth, Challenge,
        "RFC 6749 §5.2 `invalid_client`: the client could not be authenticated. At the password grant, `mfa_required`: the password is right and the user has a second factor; the body carries `mfa_token` for `grant_type=urn:tessera:grant-type:mfa`.";
    OAuthOther: OAuth, RetryAfter,
        "Any other error, in the same shape: 409 `invalid_request`, 413 and 415 `invalid_request`, 429 `slow_down` (with `Retry-After`), 500 `server_error`, 503 `temporarily_unavailable` (with `Retry-After`).";
    SignInFirst: Empty, Location,
        "Not signed in: `303 See Other` to `/login?return_to=…`, which comes back here after signing in.";
    PageError: Html, None,
        "An error page: 400 a form or link that cannot be read, 403 a form posted without its CSRF token or from another site, 413 a form over 64 KiB, 415 a body that is no form, 429 and 503 (with `Retry-After`), 500.";
}
