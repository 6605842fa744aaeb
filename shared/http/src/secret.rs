//! Responses that carry a secret: an API key, a TOTP seed, session tokens. They are sent once and
//! kept nowhere: `Cache-Control: no-store` keeps them out of caches, and the idempotency layer
//! stores no copy to replay (a retry with the same key is a 409 that says why; see
//! [`crate::idempotency`]). Any new secret (webhook signing secrets next) goes out through
//! [`carrying_secret`].

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Marks a response whose body holds a secret (a response extension the layers read).
#[derive(Debug, Clone, Copy)]
pub struct CarriesSecret;

/// The response, marked as carrying a secret and never cached.
pub fn carrying_secret(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(CarriesSecret);
    response
}

/// Whether a response was marked by [`carrying_secret`].
pub fn carries_secret(response: &Response) -> bool {
    response.extensions().get::<CarriesSecret>().is_some()
}
